"""rosbag2 tools without a ROS installation: a rainy demo bag, offline processing into feature
clouds, and replay through rclpy. Reading and writing use ``rosbags`` (sqlite3 and mcap; CDR
identical to rclpy's); only ``play`` needs rclpy.
"""

from .cloud import features_to_bag_cloud
from .demo import TUM_FR2_INTRINSICS, write_demo_bag
from .process import process_bag

__all__ = ["TUM_FR2_INTRINSICS", "features_to_bag_cloud", "process_bag", "write_demo_bag"]
