"""``siftrain_node`` entry point: init, spin, clean exit on SIGINT/SIGTERM (exit code 0)."""

from __future__ import annotations

import sys

from ..ros.spin import run_node


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown. Returns 0 on SIGINT/SIGTERM, 1 when it cannot start."""

    def make_node():  # imported after rclpy.init: importing torch takes a while
        from .node import SiftRainNode

        return SiftRainNode()

    return run_node(make_node, "siftrain_node", args)


if __name__ == "__main__":
    sys.exit(main())
