"""Helpers for tests that talk to a real ``siftrain_node`` process over rclpy (PyPI wheels).

Isolation: every test gets its own ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a
ROS_LOG_DIR under tmp, for the node process and for this process's rclpy context alike.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from siftrain_ros import samples

FRAME_SIZE = (320, 240)


def ros_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a node process (and, applied to os.environ, for this process)."""
    env = dict(os.environ)
    # Domain IDs 1..100 keep Fast DDS ports in range; random per test so parallel runs and
    # leftovers of earlier tests do not meet.
    env["ROS_DOMAIN_ID"] = str(random.Random(os.getpid() ^ time.time_ns()).randint(1, 100))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_test_weights(directory: Path) -> Path:
    """Weights of freshly built (untrained) lite nets: the node runs the real code path without
    the shipped weights, which are trained elsewhere."""
    from siftrain_ros.frontend.weights import save_net
    from siftrain_ros.nets import build_net

    for name in ("dprnet", "ggirnet"):
        torch_seed(0)
        save_net(build_net(name, "lite"), directory / f"{name}_lite.safetensors")
    return directory


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def sample_gray(index: int = 0, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """A bundled TUM frame as uint8 gray at ``size`` (W, H)."""
    gray = cv2.imread(str(samples.tum_frames()[index]), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def image_msg(gray: np.ndarray, sec: int, nanosec: int = 0, frame_id: str = "camera",
              encoding: str = "mono8") -> Any:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from siftrain_ros.ros.image_conversion import bgr_to_image_msg, gray_to_image_msg

    header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
    if encoding == "bgr8":
        return bgr_to_image_msg(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), header)
    return gray_to_image_msg(gray, header)


class NodeProcess:
    """``siftrain_node`` as a child process, its output in a log file; subclasses name another
    node module."""

    module = "siftrain_ros.node"
    default_name = "node"

    def __init__(self, tmp_path: Path, env: dict[str, str], params: dict[str, Any],
                 remaps: dict[str, str] | None = None, name: str | None = None) -> None:
        name = name or self.default_name
        args = [sys.executable, "-m", self.module, "--ros-args"]
        for key, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["-p", f"{key}:={text}"]
        for key, value in (remaps or {}).items():
            args += ["-r", f"{key}:={value}"]
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "]: ready" in self.output():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"node not ready after {timeout} s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()

    def wait_exit(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code


class RosHarness:
    """An rclpy context, node and executor thread in the test process."""

    def __init__(self, domain_id: int, name: str = "siftrain_test") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> list[Any]:
        """Subscribe ``topic``; the returned list fills with messages as they arrive."""
        received: list[Any] = []

        def on_msg(msg: Any) -> None:
            with self._lock:
                received.append(msg)

        self.node.create_subscription(msg_type, topic, on_msg, qos)
        return received

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0,
                 what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def diagnostics_values(msg: Any) -> dict[str, str]:
    """key -> value of the node's status in a DiagnosticArray (empty if it has none: other
    publishers of /diagnostics may share the domain)."""
    for status in msg.status:
        if status.name.endswith("feature front end"):
            return {kv.key: kv.value for kv in status.values}
    return {}
