"""SIFT features <-> ``sensor_msgs/PointCloud2`` "feature cloud" (layout: docs/design-notes).

One point per keypoint, height 1, width N, little-endian, packed (point_step 156):

=========== ======= ===== ======
field       type    count offset
=========== ======= ===== ======
x, y        FLOAT32 1     0, 4
size        FLOAT32 1     8
angle       FLOAT32 1     12
response    FLOAT32 1     16
octave      INT32   1     20
class_id    INT32   1     24
descriptor  UINT8   128   28
=========== ======= ===== ======

Writing uses exactly this layout. Reading goes by ``msg.fields`` (names, offsets, datatypes),
``point_step``, ``row_step`` and ``is_bigendian``, so clouds from other publishers (another
field order, padding, big-endian, organised height > 1) parse too; ``class_id`` may be absent
(it is reserved for track ids and read as -1). Everything is vectorised with numpy structured
dtypes: no per-point Python loop except building ``cv2.KeyPoint`` objects, which needs one.

``sensor_msgs`` is imported inside the functions that build messages: this module imports
without a ROS 2 installation, and the readers accept any duck-typed message (e.g. ``rosbags``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from siftrain_ros.sift.features import DESCRIPTOR_SIZE, Features

if TYPE_CHECKING:
    from sensor_msgs.msg import PointCloud2

# sensor_msgs/PointField datatype constants (fixed by the message definition; repeated here so
# the parser needs no sensor_msgs import).
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_DATATYPE_NAMES = {1: "INT8", 2: "UINT8", 3: "INT16", 4: "UINT16", 5: "INT32", 6: "UINT32",
                   7: "FLOAT32", 8: "FLOAT64"}
_DATATYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 8: 8}
_DATATYPE_CODES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}

# (name, datatype, count) in publishing order; offsets follow by packing.
FIELD_LAYOUT: tuple[tuple[str, int, int], ...] = (
    ("x", FLOAT32, 1),
    ("y", FLOAT32, 1),
    ("size", FLOAT32, 1),
    ("angle", FLOAT32, 1),
    ("response", FLOAT32, 1),
    ("octave", INT32, 1),
    ("class_id", INT32, 1),
    ("descriptor", UINT8, DESCRIPTOR_SIZE),
)
# Fields a reader can do without (filled with this value).
OPTIONAL_FIELDS = {"class_id": -1}


def _layout_dtype(layout: tuple[tuple[str, int, int], ...]) -> tuple[np.dtype, list[int]]:
    names, formats, offsets, offset = [], [], [], 0
    for name, datatype, count in layout:
        names.append(name)
        code = "<" + _DATATYPE_CODES[datatype]
        formats.append((code, (count,)) if count != 1 else code)
        offsets.append(offset)
        offset += _DATATYPE_SIZES[datatype] * count
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": offset}), offsets


POINT_DTYPE, FIELD_OFFSETS = _layout_dtype(FIELD_LAYOUT)
POINT_STEP = POINT_DTYPE.itemsize  # 4 * 7 + 128 = 156
assert POINT_STEP == 156


class FeatureCloudError(ValueError):
    """A PointCloud2 that is not a valid feature cloud; the message says what is wrong."""


def _copy_header(header: Any) -> Any:
    """A fresh ``std_msgs/Header`` with the same stamp and frame_id (never restamp, never alias:
    a later edit of the image header must not change an already built output)."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(stamp=Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
                  frame_id=str(header.frame_id))


def features_to_cloud(features: Features, header: Any,
                      class_id: np.ndarray | None = None) -> PointCloud2:
    """Pack features into a feature-cloud ``sensor_msgs/PointCloud2``.

    Args:
        features: N keypoints (xy (N, 2) float32, size/angle/response (N,) float32,
            octave (N,) int32, descriptors (N, 128) uint8).
        header: ``std_msgs/Header`` of the source image; stamp and frame_id are copied.
        class_id: optional (N,) integer ids (e.g. track ids); -1 for every point if None.

    Returns:
        PointCloud2 with height 1, width N, point_step 156, row_step 156 * N, little-endian,
        is_dense True and the fields of ``FIELD_LAYOUT``.

    Raises:
        FeatureCloudError: ``class_id`` does not have shape (N,).
    """
    from sensor_msgs.msg import PointCloud2, PointField

    n = len(features)
    if class_id is None:
        ids = np.full(n, -1, np.int32)
    else:
        ids = np.asarray(class_id)
        if ids.shape != (n,):
            raise FeatureCloudError(f"class_id has shape {ids.shape}, expected ({n},)")
        ids = ids.astype(np.int32)

    points = np.zeros(n, POINT_DTYPE)
    points["x"] = features.xy[:, 0]
    points["y"] = features.xy[:, 1]
    points["size"] = features.size
    points["angle"] = features.angle
    points["response"] = features.response
    points["octave"] = features.octave
    points["class_id"] = ids
    points["descriptor"] = features.descriptors

    msg = PointCloud2()
    msg.header = _copy_header(header)
    msg.height = 1
    msg.width = n
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
                  for (name, datatype, count), offset in zip(FIELD_LAYOUT, FIELD_OFFSETS,
                                                             strict=True)]
    msg.is_bigendian = False
    msg.point_step = POINT_STEP
    msg.row_step = POINT_STEP * n
    msg.is_dense = True  # no NaN/invalid points: every point is a detected keypoint
    msg.data = points.tobytes()
    return msg


def _points_dtype(msg: Any) -> np.dtype:
    """Structured dtype (itemsize point_step) for the feature fields found in ``msg.fields``."""
    point_step = int(msg.point_step)
    by_name: dict[str, Any] = {}
    for field in msg.fields:
        if field.name in by_name:
            raise FeatureCloudError(f"field {field.name!r} appears more than once")
        by_name[field.name] = field

    order = "<>"[bool(msg.is_bigendian)]
    names, formats, offsets = [], [], []
    for name, datatype, count in FIELD_LAYOUT:
        field = by_name.get(name)
        if field is None:
            if name in OPTIONAL_FIELDS:
                continue
            present = ", ".join(repr(f.name) for f in msg.fields) or "none"
            raise FeatureCloudError(
                f"not a feature cloud: field {name!r} is missing (fields: {present})")
        if field.datatype != datatype:
            got = _DATATYPE_NAMES.get(field.datatype, f"unknown datatype {field.datatype}")
            raise FeatureCloudError(
                f"field {name!r} has datatype {got}, expected {_DATATYPE_NAMES[datatype]}")
        if field.count != count:
            raise FeatureCloudError(f"field {name!r} has count {field.count}, expected {count}")
        end = field.offset + _DATATYPE_SIZES[datatype] * count
        if end > point_step:
            raise FeatureCloudError(
                f"point_step {point_step} is too small: field {name!r} at offset "
                f"{field.offset} needs {end} bytes per point")
        names.append(name)
        code = order + _DATATYPE_CODES[datatype]
        formats.append((code, (count,)) if count != 1 else code)
        offsets.append(int(field.offset))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": point_step})


def _read_points(msg: Any) -> np.ndarray:
    """Validate the geometry of ``msg`` and view its data as a (width * height,) structured
    array (a copy only when rows are padded)."""
    width, height = int(msg.width), int(msg.height)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    dtype = _points_dtype(msg)
    if row_step < width * point_step:
        raise FeatureCloudError(
            f"width {width} x point_step {point_step} = {width * point_step} bytes does not fit "
            f"in row_step {row_step}: width/height do not match the data layout")
    data = np.frombuffer(msg.data, np.uint8)
    expected = row_step * height
    if data.size != expected:
        what = "truncated" if data.size < expected else "too long"
        raise FeatureCloudError(
            f"data is {what}: {data.size} bytes, expected row_step {row_step} x height "
            f"{height} = {expected}")
    n = width * height
    if n == 0:
        return np.zeros(0, dtype)
    used = width * point_step
    if row_step != used:
        # Padded rows (organised clouds): drop the padding, then points are contiguous.
        data = np.ascontiguousarray(data.reshape(height, row_step)[:, :used]).reshape(-1)
    return data.view(dtype)


def read_feature_cloud(msg: Any) -> tuple[Features, np.ndarray]:
    """Parse a feature cloud into features plus per-point class ids.

    Args:
        msg: ``sensor_msgs/PointCloud2`` (or any object with the same attributes).

    Returns:
        (features, class_id): N = width * height points in row-major order; class_id is (N,)
        int32 (-1 when the cloud has no ``class_id`` field). Arrays are native-endian copies.

    Raises:
        FeatureCloudError: missing fields, wrong datatype/count, point_step too small for the
            fields, row_step too small for width, or data length != row_step * height.
    """
    points = _read_points(msg)
    n = len(points)
    names = points.dtype.names or ()
    ids = (points["class_id"].astype(np.int32) if "class_id" in names
           else np.full(n, OPTIONAL_FIELDS["class_id"], np.int32))
    features = Features(
        xy=np.stack([points["x"], points["y"]], axis=1).astype(np.float32),
        size=points["size"].astype(np.float32),
        angle=points["angle"].astype(np.float32),
        response=points["response"].astype(np.float32),
        octave=points["octave"].astype(np.int32),
        descriptors=points["descriptor"].astype(np.uint8).reshape(n, DESCRIPTOR_SIZE),
    )
    return features, ids


def cloud_to_features(msg: Any) -> Features:
    """Parse a feature cloud into ``Features`` (N = width * height; see ``read_feature_cloud``).

    Raises:
        FeatureCloudError: the cloud is not a valid feature cloud (the message says why).
    """
    return read_feature_cloud(msg)[0]


def features_from_cloud(msg: Any) -> tuple[list[cv2.KeyPoint], np.ndarray]:
    """Parse a feature cloud into OpenCV form.

    Returns:
        (keypoints, descriptors): N ``cv2.KeyPoint`` (pt, size, angle, response, octave,
        class_id from the cloud) and an (N, 128) uint8 descriptor array, as
        ``cv2.SIFT.detectAndCompute`` would give (use ``descriptors.astype(np.float32)`` for
        a float matcher).

    Raises:
        FeatureCloudError: the cloud is not a valid feature cloud (the message says why).
    """
    features, ids = read_feature_cloud(msg)
    keypoints = [cv2.KeyPoint(float(x), float(y), float(s), float(a), float(r), int(o), int(c))
                 for (x, y), s, a, r, o, c in zip(features.xy.tolist(), features.size.tolist(),
                                                  features.angle.tolist(),
                                                  features.response.tolist(),
                                                  features.octave.tolist(), ids.tolist(),
                                                  strict=True)]
    return keypoints, features.descriptors
