"""The node's parameters: one table of names, defaults, descriptions and constraints.

Declared with ``ParameterDescriptor`` so ``ros2 param describe`` shows descriptions, ranges and
allowed values; checked by ``validate`` both at start and in the on-set-parameters callback, so
a bad value is refused with the same reason either way. Parameters that need the engine or the
subscriptions rebuilt are read-only after start (rclpy refuses changes to them itself).
"""

from __future__ import annotations

from typing import Any

from ..frontend import (
    BACKENDS,
    DEFAULT_CORRECTION_STRENGTH,
    DEFAULT_KEYPOINT_RAIN_GATE,
    DEFAULT_LOCAL_RAIN_GATE,
    DEFAULT_RAIN_GATE,
    PRECISIONS,
)
from ..frontend import factory as _factory
from ..ros.parameters import ParamSpec, check_value

# Backends the factory knows beyond the four documented ones (e.g. tensorrt_rtx), if any.
BACKEND_CHOICES = tuple(BACKENDS) + tuple(getattr(_factory, "EXTRA_BACKENDS", ()))

IMAGE_QOS_CHOICES = ("SENSOR_DATA", "DEFAULT", "SYSTEM_DEFAULT")
SCALE_RANGE = (0.05, 4.0)  # FrontEndConfig's accepted range
MAX_KEYPOINTS_RANGE = (0, 100_000)
CONTRAST_RANGE = (0.0, 1.0)
EDGE_RANGE = (1.0, 1000.0)
QOS_DEPTH_RANGE = (1, 1000)
RAIN_GATE_RANGE = (0.0, 255.0)
STRENGTH_RANGE = (0.0, 1.0)


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("derain", True, "run DPRNet/GGIRNet before SIFT; false runs plain SIFT (A/B "
              "comparisons, or no weights)", read_only=True),
    ParamSpec("backend", "auto", "network backend (auto picks the fastest available)",
              choices=BACKEND_CHOICES, read_only=True),
    ParamSpec("precision", "fp32", "network precision (fp16 needs CUDA; int8 needs tensorrt)",
              choices=PRECISIONS, read_only=True),
    ParamSpec("device", "cpu", "torch device for networks and SIFT: cpu, cuda or cuda:N",
              read_only=True),
    ParamSpec("weights_dir", "", "directory with <net>_lite.safetensors; empty = the weights "
              "shipped in the package", read_only=True),
    ParamSpec("engine_dir", "", "TensorRT engine cache directory; empty = the package default",
              read_only=True),
    ParamSpec("force_engine_rebuild", False, "rebuild cached TensorRT engines at start",
              read_only=True),
    ParamSpec("rain_gate", DEFAULT_RAIN_GATE, "gray levels: a frame DPRNet changes by less "
              "than this on average counts as dry and gets plain SIFT (the nets cost dry frames "
              "keypoints); 0 never gates", value_range=RAIN_GATE_RANGE),
    ParamSpec("local_rain_gate", DEFAULT_LOCAL_RAIN_GATE, "gray levels, per pixel on frames "
              "the rain gate lets through: the nets' fine corrections weaker than this locally "
              "are scaled down, keeping the frame's detail between streaks; 0 = nets' output "
              "as is", value_range=RAIN_GATE_RANGE),
    ParamSpec("keypoint_rain_gate", DEFAULT_KEYPOINT_RAIN_GATE, "gray levels, per keypoint on "
              "frames the rain gate lets through: keypoints where DPRNet's local correction is "
              "below this are detected on the frame itself, the others on DPRNet's output; 0 = "
              "DPRNet's output only", value_range=RAIN_GATE_RANGE),
    ParamSpec("correction_strength", DEFAULT_CORRECTION_STRENGTH, "share of the nets' "
              "correction applied: frame + s (output - frame); below 1 keeps some of the "
              "frame's own structure", value_range=STRENGTH_RANGE),
    ParamSpec("flip_ensemble", False, "also run the nets on the mirrored frame and average the "
              "two outputs: twice the networks' time per frame"),
    ParamSpec("image_scale", 1.0, "process at this fraction of the input size; keypoints are "
              "still published in input pixels", value_range=SCALE_RANGE),
    ParamSpec("max_keypoints", 0, "keep the strongest N keypoints by response; 0 keeps all",
              value_range=MAX_KEYPOINTS_RANGE),
    ParamSpec("contrast_threshold", 0.04, "SIFT DoG contrast threshold (OpenCV units)",
              value_range=CONTRAST_RANGE),
    ParamSpec("edge_threshold", 10.0, "SIFT edge (principal curvature ratio) threshold",
              value_range=EDGE_RANGE),
    ParamSpec("publish_derained", False, "publish DPRNet's output on features/derained (mono8, "
              "processing scale)"),
    ParamSpec("publish_debug_image", True, "draw keypoints on features/debug_image (only "
              "rendered while someone subscribes)"),
    ParamSpec("subscribe_compressed", False, "also subscribe <image>/compressed "
              "(sensor_msgs/CompressedImage)", read_only=True),
    ParamSpec("image_qos", "SENSOR_DATA", "QoS of the image subscriptions (SENSOR_DATA is "
              "best effort: matches camera drivers; DEFAULT is reliable)",
              choices=IMAGE_QOS_CHOICES, read_only=True),
    ParamSpec("qos_depth", 5, "history depth of the image subscriptions",
              value_range=QOS_DEPTH_RANGE, read_only=True),
)
SPECS = {spec.name: spec for spec in PARAMS}


def validate(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name``; None when it is."""
    spec = SPECS.get(name)
    if spec is None:
        return None  # not ours (use_sim_time etc.): rclpy checks those
    reason = check_value(spec, value)
    if reason is None and name == "device" and not (
            value in ("cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())):
        reason = f"device must be cpu, cuda or cuda:N, got {value!r}"
    return reason
