"""Reference visual odometry on feature clouds: a consumer of ``siftrain_node``'s output.

Modules (one concept each): ``matching`` (mutual L2 nearest neighbours, Lowe ratio, ORB-SLAM
rotation-consistency histogram), ``geometry`` (essential matrix + cheirality: relative pose,
scale-free), ``tracker`` (frame-to-frame tracking, accumulated pose), ``groundtruth`` (TUM /
KITTI poses, relative-pose errors), ``evaluate`` (``siftrain eval-vo``), ``params``, ``node``
and ``runner`` (the ROS 2 node ``siftrain_vo``). Importing this package imports neither rclpy
nor torch.
"""

from __future__ import annotations


def main(args: list[str] | None = None) -> int:
    """Entry point of ``siftrain_vo`` (see ``siftrain_ros.vo.runner``)."""
    from .runner import main as run

    return run(args)


__all__ = ["main"]
