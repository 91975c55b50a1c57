"""run_node's exit codes: a shutdown signal is a normal exit, even when it races the executor."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Each case runs in its own interpreter: run_node owns rclpy's default context.
SCRIPT = textwrap.dedent("""
    import sys
    import rclpy
    from rclpy.impl.implementation_singleton import rclpy_implementation
    from rclpy.node import Node
    from siftrain_ros.ros.spin import run_node

    def make_node():
        node = Node("spin_probe")

        def tick():
            if sys.argv[1] == "shut down":
                rclpy.shutdown()  # what rclpy's SIGTERM handler does
            # What the executor raises when the context is gone while it builds a wait set.
            raise rclpy_implementation.RCLError("failed to initialize wait set")

        node.create_timer(0.01, tick)
        return node

    sys.exit(run_node(make_node, "spin_probe"))
""")


@pytest.mark.parametrize(("case", "code"), [("shut down", 0), ("context alive", 1)])
def test_wait_set_error_after_shutdown_is_a_normal_exit(case: str, code: int) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, case], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert ("RCLError" in done.stderr) == (code != 0), done.stderr
