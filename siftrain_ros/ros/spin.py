"""Running a node until shutdown, the same way for every node in the package."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node

from .parameters import StartupError


def run_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until shutdown.

    ``make_node`` is called after ``rclpy.init`` so that slow imports (torch) can live inside
    it. Returns 0 on SIGINT/SIGTERM and 1 when the node raises ``StartupError``.
    """
    # rclpy.init installs its SIGINT and SIGTERM handlers: they shut the context down, and
    # spin() then raises ExternalShutdownException (KeyboardInterrupt where the handlers
    # were disabled); both are a normal exit.
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:
        # A signal that shuts the context down while the executor builds its wait set makes
        # rclpy raise "failed to initialize wait set: the given context is not valid" instead
        # (a known race: ros2/rclpy#398, ros2/ros2cli#854). Still a normal exit; with the
        # context alive it is a real error.
        if rclpy.ok():
            raise
    except StartupError as error:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {error}")
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
