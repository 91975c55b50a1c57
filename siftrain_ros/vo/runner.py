"""``siftrain_vo`` entry point: init, spin, clean exit on SIGINT/SIGTERM (exit code 0)."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown. Returns 0 on SIGINT/SIGTERM, 1 when it cannot start."""
    # rclpy.init's SIGINT/SIGTERM handlers shut the context down; spin() then raises
    # ExternalShutdownException (KeyboardInterrupt where the handlers were disabled).
    rclpy.init(args=args)
    from .node import NODE_NAME, StartupError, VisualOdometryNode

    node = None
    code = 0
    try:
        node = VisualOdometryNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except StartupError as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
