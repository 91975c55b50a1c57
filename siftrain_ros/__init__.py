"""siftrain_ros: rain-robust SIFT for ROS 2 visual-odometry front ends."""

import os

# PyTorch's OpenMP threads spin-wait between parallel regions by default. The SIFT stages are
# many short tensor ops, and the node shares the cores with its executor, other nodes and the
# bag player: spinning then made description 10-80x slower under load. Passive waiting costs
# microseconds per op when the machine is idle. Must be set before torch is first imported;
# an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
