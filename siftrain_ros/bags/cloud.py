"""Feature clouds as ``rosbags`` messages, so offline processing needs no rclpy.

Same layout and bytes as ``siftrain_ros.ros.feature_cloud.features_to_cloud`` (test_bags
checks the CDR against rclpy's serialisation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ros.feature_cloud import FIELD_LAYOUT, FIELD_OFFSETS, POINT_DTYPE, POINT_STEP
from ..sift import Features
from .store import typestore


def features_to_bag_cloud(features: Features, header: Any) -> Any:
    """A ``sensor_msgs/msg/PointCloud2`` (rosbags type) with the image header's stamp and
    frame_id."""
    types = typestore().types
    n = len(features)
    points = np.zeros(n, POINT_DTYPE)
    points["x"], points["y"] = features.xy[:, 0], features.xy[:, 1]
    points["size"], points["angle"] = features.size, features.angle
    points["response"], points["octave"] = features.response, features.octave
    points["class_id"] = -1
    points["descriptor"] = features.descriptors
    Header, Time = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]
    PointField = types["sensor_msgs/msg/PointField"]
    return types["sensor_msgs/msg/PointCloud2"](
        header=Header(stamp=Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
                      frame_id=str(header.frame_id)),
        height=1, width=n,
        fields=[PointField(name=name, offset=offset, datatype=datatype, count=count)
                for (name, datatype, count), offset in zip(FIELD_LAYOUT, FIELD_OFFSETS,
                                                           strict=True)],
        is_bigendian=False, point_step=POINT_STEP, row_step=POINT_STEP * n,
        data=np.frombuffer(points.tobytes(), np.uint8), is_dense=True)
