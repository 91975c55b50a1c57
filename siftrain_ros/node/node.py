"""``SiftRainNode``: images in, feature clouds (+ derained/debug images, diagnostics) out.

Threading: the executor thread only runs callbacks that return at once (the image callback
drops the message into a one-slot mailbox; camera_info is cached; the diagnostics timer reads a
snapshot). One worker thread decodes, runs the front end and publishes. So a slow pipeline
drops old frames (counted) rather than queueing them, and parameter services stay responsive.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from ..device import resolve_device
from ..frontend import FeatureFrontEnd, FrontEndConfig, MissingWeightsError, make_backend
from ..ros.feature_cloud import features_to_cloud
from ..ros.image_conversion import ImageConversionError, bgr_to_image_msg, gray_to_image_msg
from ..ros.parameters import StartupError, declare_parameters
from ..sift import SiftConfig
from ..sift.image import InvalidImageError
from .debug_image import draw_keypoints
from .decode import decode_image
from .mailbox import LatestMailbox
from .params import PARAMS, SPECS, validate
from .qos import image_qos_profile
from .stats import NodeStats, diagnostics_message

NODE_NAME = "siftrain_node"
DIAGNOSTICS_PERIOD_S = 1.0
WARN_THROTTLE_S = 2.0
CAMERA_INFO_CACHE = 30  # camera_info messages kept to pair with frames by stamp
LIVE_PARAMS = ("image_scale", "max_keypoints", "contrast_threshold", "edge_threshold",
               "rain_gate", "local_rain_gate", "keypoint_rain_gate", "correction_strength",
               "flip_ensemble")


def _stamp_key(header: Any) -> tuple[int, int]:
    return int(header.stamp.sec), int(header.stamp.nanosec)


class SiftRainNode(Node):
    """The feature front end as a ROS 2 node (topics and parameters: docs/ros.md)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._params = self._declare_parameters()
        self._backend = self._load_backend() if self._params["derain"] else None
        self._frontend = self._build_frontend(self._params)
        self._frontend_lock = threading.Lock()
        # Before subscribing and saying "ready": whoever waits for "ready" (a bag player, a
        # launch test) must not have its first frames dropped while kernels compile.
        self._warm_up()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self._stats = NodeStats()
        self._mailbox: LatestMailbox[tuple[Any, float]] = LatestMailbox()
        self._camera_infos: deque[CameraInfo] = deque(maxlen=CAMERA_INFO_CACHE)
        self._camera_info_lock = threading.Lock()

        # Outputs: reliable, depth 10 (REP-2003 "default" for processed data).
        self._cloud_pub = self.create_publisher(PointCloud2, "features", 10)
        self._info_pub = self.create_publisher(CameraInfo, "features/camera_info", 10)
        self._debug_pub = self.create_publisher(Image, "features/debug_image", 10)
        self._derained_pub = self.create_publisher(Image, "features/derained", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        qos_name, depth = self._params["image_qos"], self._params["qos_depth"]
        qos = image_qos_profile(qos_name, depth)
        self._subs = [self.create_subscription(Image, "image", self._on_image, qos)]
        image_topic = self.resolve_topic_name("image")
        topics = [image_topic]
        if self._params["subscribe_compressed"]:
            topics.append(f"{image_topic}/compressed")
            self._subs.append(self.create_subscription(CompressedImage, topics[-1],
                                                       self._on_image, qos))
        # camera_info is small and latched-like in practice: reliable subscribers miss it from
        # best-effort drivers, so it follows the image QoS.
        self._subs.append(self.create_subscription(CameraInfo, "camera_info",
                                                   self._on_camera_info, qos))
        self.get_logger().info(
            f"subscribed to {', '.join(topics)} and {self.resolve_topic_name('camera_info')} "
            f"with QoS {qos_name} (depth {depth}); publishing "
            f"{self.resolve_topic_name('features')} (and its camera_info, debug_image, derained)")

        self._diag_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="siftrain_worker", daemon=True)
        self._worker.start()
        self.get_logger().info("ready")

    # ------------------------------------------------------------------ start-up

    def _declare_parameters(self) -> dict[str, Any]:
        values = declare_parameters(self, PARAMS, validate)
        try:
            resolve_device(values["device"])
        except ValueError as error:
            raise StartupError(str(error)) from None
        return values

    def _load_backend(self) -> Any:
        p = self._params
        log = self.get_logger().info
        log(f"loading networks: backend {p['backend']}, precision {p['precision']}, device "
            f"{p['device']}, weights {p['weights_dir'] or 'shipped with the package'}")
        start = time.perf_counter()
        try:
            backend = make_backend(
                p["backend"], precision=p["precision"], device=p["device"],
                weights_dir=Path(p["weights_dir"]) if p["weights_dir"] else None,
                engine_dir=Path(p["engine_dir"]) if p["engine_dir"] else None,
                force_engine_rebuild=p["force_engine_rebuild"], log=log)
        except MissingWeightsError as error:
            raise StartupError(f"{error}. Set weights_dir:=DIR to use other weights, or "
                               f"derain:=false to run plain SIFT.") from None
        except ValueError as error:
            raise StartupError(f"cannot build backend {p['backend']!r}: {error}") from None
        log(f"networks ready: {getattr(backend, 'name', p['backend'])} on {backend.device} "
            f"in {time.perf_counter() - start:.1f} s")
        return backend

    def _build_frontend(self, p: dict[str, Any]) -> FeatureFrontEnd:
        sift = SiftConfig(contrast_threshold=p["contrast_threshold"],
                          edge_threshold=p["edge_threshold"], max_keypoints=p["max_keypoints"])
        config = FrontEndConfig(derain=p["derain"], scale=p["image_scale"], sift=sift,
                                rain_gate=p["rain_gate"], local_rain_gate=p["local_rain_gate"],
                                keypoint_rain_gate=p["keypoint_rain_gate"],
                                correction_strength=p["correction_strength"],
                                flip_ensemble=p["flip_ensemble"])
        return FeatureFrontEnd(config, self._backend, device=p["device"])

    # ------------------------------------------------------------------ parameters

    def _warm_up(self) -> None:
        try:
            seconds = self._frontend.warm_up()
        except Exception as error:  # noqa: BLE001 - the first real frame will report it
            self.get_logger().warning(f"warm-up failed: {error!r}")
        else:
            self.get_logger().info(f"warmed up in {seconds:.1f} s")

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Refuse bad values with a reason (ranges and read-only are also checked by rclpy)."""
        for param in params:
            if param.name in SPECS and SPECS[param.name].read_only:
                return SetParametersResult(
                    successful=False, reason=f"{param.name} is read-only after start: restart "
                                             f"the node to change it")
            reason = validate(param.name, param.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params: list[Parameter]) -> None:
        changed = {p.name: p.value for p in params if p.name in LIVE_PARAMS}
        changed.update({p.name: p.value for p in params
                        if p.name in ("publish_derained", "publish_debug_image")})
        if not changed:
            return
        self._params.update(changed)
        frontend = self._build_frontend(self._params)
        with self._frontend_lock:
            self._frontend = frontend
        self.get_logger().info(f"parameters changed: {changed}")

    # ------------------------------------------------------------------ executor callbacks

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self._stats.on_received()
        if self._mailbox.put((msg, time.perf_counter())):
            self._stats.dropped = self._mailbox.dropped

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._camera_info_lock:
            self._camera_infos.append(msg)

    def _publish_diagnostics(self) -> None:
        p = self._params
        info = {"backend": getattr(self._backend, "name", "none"), "derain": str(p["derain"]),
                "precision": p["precision"], "device": p["device"],
                "image_scale": f"{p['image_scale']:g}", "image_qos": p["image_qos"],
                "rain_gate": f"{p['rain_gate']:g}",
                "local_rain_gate": f"{p['local_rain_gate']:g}",
                "keypoint_rain_gate": f"{p['keypoint_rain_gate']:g}",
                "correction_strength": f"{p['correction_strength']:g}",
                "flip_ensemble": str(p["flip_ensemble"])}
        msg = diagnostics_message(self._stats.snapshot(), f"{self.get_name()}: feature front end",
                                  p["device"], self.get_clock().now().to_msg(), info,
                                  self._worker.is_alive())
        self._diag_pub.publish(msg)

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        while True:
            item = self._mailbox.take()
            if item is None:
                return
            msg, received = item
            try:
                self._process(msg, received)
            except (ImageConversionError, InvalidImageError) as error:
                reason = f"{type(msg).__name__} {getattr(msg, 'encoding', '')}: {error}"
                self._stats.on_rejected(reason)
                self.get_logger().warning(f"frame rejected: {reason}",
                                          throttle_duration_sec=WARN_THROTTLE_S)
            except Exception as error:  # noqa: BLE001 - keep the node alive, report it
                if self._mailbox.closed or not rclpy.ok():
                    return
                self._stats.on_rejected(f"processing failed: {error!r}")
                self.get_logger().error(f"processing failed: {error!r}",
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def _process(self, msg: Any, received: float) -> None:
        t0 = time.perf_counter()
        gray = decode_image(msg)
        t1 = time.perf_counter()
        with self._frontend_lock:
            frontend = self._frontend
        result = frontend(gray)
        t2 = time.perf_counter()
        header = msg.header
        self._cloud_pub.publish(features_to_cloud(result.features, header))
        self._publish_camera_info(header)
        if (self._params["publish_derained"] and result.detect_image is not None
                and self._derained_pub.get_subscription_count() > 0):
            self._derained_pub.publish(gray_to_image_msg(result.derained, header))
        # Drawing costs a few ms per frame: only when someone is looking.
        if self._params["publish_debug_image"] and self._debug_pub.get_subscription_count() > 0:
            self._debug_pub.publish(bgr_to_image_msg(draw_keypoints(gray, result.features),
                                                     header))
        t3 = time.perf_counter()
        timings = dict(result.timings_ms)
        timings.update(convert=(t1 - t0) * 1000, publish=(t3 - t2) * 1000,
                       latency=(t3 - received) * 1000)
        self._stats.on_processed(timings, len(result.features), result.rain_level,
                                 result.gated_dry)

    def _publish_camera_info(self, header: Any) -> None:
        """The camera_info with the frame's stamp; failing that the newest one with the frame's
        header (drivers that stamp them apart). Coordinates are in input pixels, so the
        intrinsics apply unchanged."""
        with self._camera_info_lock:
            if not self._camera_infos:
                return
            key = _stamp_key(header)
            match = next((m for m in reversed(self._camera_infos)
                          if _stamp_key(m.header) == key), None)
            if match is None:
                latest = self._camera_infos[-1]
                match = CameraInfo()
                for slot in CameraInfo.get_fields_and_field_types():
                    setattr(match, slot, getattr(latest, slot))
                match.header = header
        self._info_pub.publish(match)

    # ------------------------------------------------------------------ shutdown

    def destroy_node(self) -> None:
        """Stop the worker (it finishes the frame in hand) before the publishers go."""
        self._mailbox.close()
        self._worker.join(timeout=10.0)
        super().destroy_node()
