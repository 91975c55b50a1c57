"""``VisualOdometryNode`` (``siftrain_vo``): feature clouds in, scale-free odometry out.

Topics and parameters: docs/odometry.md. Tracking runs in the features callback: matching
and RANSAC take ~60-200 ms per 640x480 frame on a 2-core CPU, less than the feature front
end that produces the clouds, and with a reliable subscription frames then queue (up to
``qos_depth``) instead of being dropped, which frame-to-frame tracking wants.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header

from ..node.qos import image_qos_profile
from ..ros.feature_cloud import FeatureCloudError, cloud_to_features
from ..ros.parameters import declare_parameters
from .geometry import Intrinsics, PoseConfig
from .groundtruth import matrix_to_quaternion
from .matching import MatchConfig
from .params import PARAMS, validate
from .tracker import FrameTracker, TrackResult

NODE_NAME = "siftrain_vo"
DIAGNOSTICS_PERIOD_S = 1.0
WARN_THROTTLE_S = 2.0
# Position is scale-free: a variance this large tells a fuser (robot_localization, ...) not to
# trust it as metric. Orientation: a per-frame variance (rad^2) accumulated over tracked frames,
# a heuristic (sub-degree frame-to-frame rotation errors on TUM fr2/desk, docs/odometry.md).
UNKNOWN_VARIANCE = 1e6
ROTATION_VARIANCE_PER_FRAME = (np.radians(0.5)) ** 2


def intrinsics_from_camera_info(msg: CameraInfo) -> Intrinsics | None:
    """Intrinsics from K (and plumb_bob/rational_polynomial D); None when K is unset (fx 0)."""
    k = [float(v) for v in msg.k]
    if len(k) != 9 or k[0] <= 0 or k[4] <= 0:
        return None
    distortion: tuple[float, ...] = ()
    if msg.distortion_model in ("plumb_bob", "rational_polynomial") and len(msg.d):
        distortion = tuple(float(v) for v in msg.d)
    return Intrinsics(k[0], k[4], k[2], k[5], distortion)


class VisualOdometryNode(Node):
    """Frame-to-frame visual odometry on ``siftrain_node``'s feature clouds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        p = self._params = self._declare_parameters()
        self._fallback = (Intrinsics(p["fx"], p["fy"], p["cx"], p["cy"])
                          if p["fx"] > 0 and p["fy"] > 0 else None)
        self._intrinsics: Intrinsics | None = None
        self._tracker = FrameTracker(
            step_length=p["step_length"],
            match_config=MatchConfig(ratio=p["ratio"], rotation_check=p["rotation_check"]),
            pose_config=PoseConfig(threshold_px=p["ransac_threshold_px"],
                                   min_inliers=p["min_inliers"], estimator=p["estimator"]))
        self._lock = threading.Lock()
        self._counts = {"frames_received": 0, "frames_tracked": 0, "frames_lost": 0,
                        "frames_rejected": 0, "frames_without_intrinsics": 0}
        self._last: TrackResult | None = None
        self._last_problem = ""
        self._track_ms: list[float] = []

        # Outputs: reliable, depth 10 (REP-2003 "default" for processed data).
        self._odom_pub = self.create_publisher(Odometry, "odometry", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        qos = image_qos_profile(p["features_qos"], p["qos_depth"])
        self._subs = [
            self.create_subscription(PointCloud2, "features", self._on_features, qos),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos),
        ]
        self.get_logger().info(
            f"subscribed to {self.resolve_topic_name('features')} and "
            f"{self.resolve_topic_name('camera_info')} with QoS {p['features_qos']} (depth "
            f"{p['qos_depth']}); publishing {self.resolve_topic_name('odometry')} "
            f"(scale-free: step_length {p['step_length']:g} per frame); fallback intrinsics "
            f"{'none' if self._fallback is None else self._fallback}")
        self._diag_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.get_logger().info("ready")

    def _declare_parameters(self) -> dict[str, Any]:
        return declare_parameters(self, PARAMS, validate)

    # ------------------------------------------------------------------ callbacks

    def _on_camera_info(self, msg: CameraInfo) -> None:
        intrinsics = intrinsics_from_camera_info(msg)
        if intrinsics is None:
            self.get_logger().warning("camera_info without intrinsics (K[0] or K[4] is 0): "
                                      "ignored", throttle_duration_sec=WARN_THROTTLE_S)
            return
        with self._lock:
            if self._intrinsics is None:
                self.get_logger().info(f"intrinsics from camera_info: {intrinsics}")
            self._intrinsics = intrinsics

    def _on_features(self, msg: PointCloud2) -> None:
        with self._lock:
            self._counts["frames_received"] += 1
            intrinsics = self._intrinsics or self._fallback
        # One warning call site per kind of problem: rclpy throttles per call site, so a
        # shared one would let one kind (e.g. no intrinsics) hide another (malformed clouds).
        log = self.get_logger()
        try:
            features = cloud_to_features(msg)
        except FeatureCloudError as error:
            text = self._count("frames_rejected", f"feature cloud rejected: {error}")
            log.warning(text, throttle_duration_sec=WARN_THROTTLE_S)
            return
        result = self._tracker.track(features, intrinsics)
        with self._lock:
            self._last = result
            if result.tracked:
                self._counts["frames_tracked"] += 1
                self._track_ms = (self._track_ms + [result.elapsed_ms])[-50:]
        if result.first:
            log.info(f"first frame: {len(features)} keypoints (reference)")
        elif result.reason == "no intrinsics":
            text = self._count("frames_without_intrinsics", "no camera_info yet (and no "
                               "fallback fx/fy/cx/cy): frame kept as reference, no pose")
            log.warning(text, throttle_duration_sec=WARN_THROTTLE_S)
        elif not result.tracked:
            text = self._count("frames_lost", f"tracking lost: {result.reason} "
                               f"({result.matches} matches); this frame is the new reference")
            log.warning(text, throttle_duration_sec=WARN_THROTTLE_S)
        else:
            self._odom_pub.publish(self._odometry(msg.header, result))

    def _count(self, counter: str, text: str) -> str:
        """Count a problem and remember it for diagnostics; returns ``text``."""
        with self._lock:
            self._counts[counter] += 1
            self._last_problem = text
        return text

    # ------------------------------------------------------------------ outputs

    def _odometry(self, header: Header, result: TrackResult) -> Odometry:
        """Odometry of the camera in ``odom_frame`` (the first frame's camera), stamp copied."""
        msg = Odometry()
        msg.header.stamp = header.stamp  # never restamp: the frame's time
        msg.header.frame_id = self._params["odom_frame"]
        msg.child_frame_id = self._params["child_frame"] or header.frame_id
        pose = result.pose
        position = msg.pose.pose.position
        position.x, position.y, position.z = (float(v) for v in pose[:3, 3])
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = matrix_to_quaternion(pose[:3, :3])
        rotation_variance = ROTATION_VARIANCE_PER_FRAME * max(1, self._tracker.tracked)
        msg.pose.covariance = [0.0] * 36
        for i in range(3):
            msg.pose.covariance[i * 7] = UNKNOWN_VARIANCE
            msg.pose.covariance[(i + 3) * 7] = float(rotation_variance)
        # No velocity estimate (no metric scale, no time model): zero twist, unknown variance.
        msg.twist.covariance = [0.0] * 36
        for i in range(6):
            msg.twist.covariance[i * 7] = UNKNOWN_VARIANCE
        return msg

    def _publish_diagnostics(self) -> None:
        with self._lock:
            counts = dict(self._counts)
            last, problem = self._last, self._last_problem
            mean_ms = float(np.mean(self._track_ms)) if self._track_ms else 0.0
            intrinsics = self._intrinsics or self._fallback
        values = [KeyValue(key=k, value=str(v)) for k, v in counts.items()]
        if last is not None:
            relative = last.relative
            values += [KeyValue(key="last_keypoints", value=str(last.keypoints)),
                       KeyValue(key="last_matches", value=str(last.matches)),
                       KeyValue(key="last_inliers",
                                value=str(relative.inliers if relative else 0)),
                       KeyValue(key="last_inlier_ratio",
                                value=f"{relative.inlier_ratio if relative else 0.0:.3f}")]
        values += [KeyValue(key="track_ms", value=f"{mean_ms:.2f}"),
                   KeyValue(key="intrinsics", value="none" if intrinsics is None else
                            f"{intrinsics.fx:g},{intrinsics.fy:g},{intrinsics.cx:g},"
                            f"{intrinsics.cy:g}")]
        if problem:
            values.append(KeyValue(key="last_problem", value=problem))
        if counts["frames_received"] == 0:
            level, message = DiagnosticStatus.OK, "waiting for feature clouds"
        elif intrinsics is None:
            level, message = DiagnosticStatus.WARN, "no intrinsics yet"
        elif last is not None and not last.tracked and not last.first:
            level, message = DiagnosticStatus.WARN, f"lost: {last.reason}"
        else:
            level, message = DiagnosticStatus.OK, f"{counts['frames_tracked']} frames tracked"
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: visual odometry",
                                  message=message, hardware_id="cpu", values=values)
        self._diag_pub.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))

    @property
    def counts(self) -> dict[str, int]:
        """Snapshot of the frame counters."""
        with self._lock:
            return dict(self._counts)

