"""The ROS 2 node ``siftrain_node`` (console script ``siftrain_node = siftrain_ros.node:main``).

Modules: ``params`` (declared parameters and their checks), ``qos`` (QoS by name), ``mailbox``
(newest-frame-wins hand-over to the worker), ``decode`` (messages to gray), ``debug_image``,
``stats`` (counters and /diagnostics), ``node`` (the Node), ``runner`` (init/spin/shutdown).
Importing this package does not import rclpy; calling ``main`` does.
"""

from __future__ import annotations


def main(args: list[str] | None = None) -> int:
    """Entry point of ``siftrain_node`` (see ``siftrain_ros.node.runner``)."""
    from .runner import main as run

    return run(args)


__all__ = ["main"]
