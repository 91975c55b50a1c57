"""ROS 2 message conversions (feature clouds, images) and, elsewhere, the node.

Deliberately empty of imports: the conversion modules import ``sensor_msgs`` only inside the
functions that build messages, so ``import siftrain_ros.ros.<module>`` works (and the parsing
side can be used on duck-typed messages, e.g. from ``rosbags``) without a ROS 2 installation.
"""
