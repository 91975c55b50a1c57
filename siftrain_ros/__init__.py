"""siftrain_ros: rain-robust SIFT for ROS 2 visual-odometry front ends."""

__version__ = "0.1.0"
