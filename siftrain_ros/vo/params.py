"""``siftrain_vo``'s parameters: one table of names, defaults, descriptions and constraints.

Same conventions as the feature node (``siftrain_ros.node.params``): declared with
``ParameterDescriptor`` (description, range, allowed values), checked by ``validate`` at start;
everything is read-only after start (the tracker is built once).
"""

from __future__ import annotations

from typing import Any

from ..ros.parameters import ParamSpec, check_value

QOS_CHOICES = ("SENSOR_DATA", "DEFAULT", "SYSTEM_DEFAULT")
FOCAL_RANGE = (0.0, 100_000.0)

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("features_qos", "DEFAULT", "QoS of the features/camera_info subscriptions "
              "(DEFAULT is reliable: with a reliable publisher no frame is lost, which "
              "frame-to-frame tracking wants; SENSOR_DATA is best effort)",
              choices=QOS_CHOICES, read_only=True),
    ParamSpec("qos_depth", 10, "history depth of the subscriptions (frames queue while one "
              "is tracked)", value_range=(1, 1000), read_only=True),
    ParamSpec("fx", 0.0, "fallback focal length x (px) used until camera_info arrives; 0 = "
              "none (wait for camera_info)", value_range=FOCAL_RANGE, read_only=True),
    ParamSpec("fy", 0.0, "fallback focal length y (px)", value_range=FOCAL_RANGE,
              read_only=True),
    ParamSpec("cx", 0.0, "fallback principal point x (px)", value_range=FOCAL_RANGE,
              read_only=True),
    ParamSpec("cy", 0.0, "fallback principal point y (px)", value_range=FOCAL_RANGE,
              read_only=True),
    ParamSpec("odom_frame", "odom", "header.frame_id of the odometry: the first tracked "
              "camera frame", read_only=True),
    ParamSpec("child_frame", "", "child_frame_id of the odometry; empty = the feature "
              "cloud's frame_id (the camera optical frame)", read_only=True),
    ParamSpec("step_length", 1.0, "length given to each frame's unit translation direction "
              "(monocular: scale-free units, not metres)", value_range=(0.0, 1000.0),
              read_only=True),
    ParamSpec("ratio", 0.8, "Lowe ratio of the L2 descriptor matching", value_range=(0.05, 1.0),
              read_only=True),
    ParamSpec("rotation_check", True, "ORB-SLAM rotation-consistency histogram (30 bins, "
              "3 kept)", read_only=True),
    ParamSpec("ransac_threshold_px", 1.0, "essential-matrix RANSAC threshold (px)",
              value_range=(0.1, 50.0), read_only=True),
    ParamSpec("estimator", "usac_accurate", "essential-matrix estimator: ransac (cv2.RANSAC) or "
              "usac_accurate (local optimisation + final polish)",
              choices=("ransac", "usac_accurate"), read_only=True),
    ParamSpec("min_inliers", 8, "fewer inliers: the frame is lost (no pose published)",
              value_range=(5, 100_000), read_only=True),
)
SPECS = {spec.name: spec for spec in PARAMS}


def validate(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name``; None when it is."""
    spec = SPECS.get(name)
    return None if spec is None else check_value(spec, value)
