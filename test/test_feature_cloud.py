"""Feature cloud (sensor_msgs/PointCloud2) packing and parsing.

rclpy / sensor_msgs import directly in the project venv: the ros-wheels-bootstrapper .pth file
re-executes the interpreter once with LD_LIBRARY_PATH set, so no conftest or env var is needed.
"""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from siftrain_ros.ros.feature_cloud import (
    FIELD_LAYOUT,
    POINT_STEP,
    FeatureCloudError,
    cloud_to_features,
    features_from_cloud,
    features_to_cloud,
    read_feature_cloud,
)
from siftrain_ros.sift.features import FIELDS, Features

# The table in docs/design-notes ("Keypoint + descriptor message"): name, datatype, count, offset.
EXPECTED_LAYOUT = [
    ("x", PointField.FLOAT32, 1, 0),
    ("y", PointField.FLOAT32, 1, 4),
    ("size", PointField.FLOAT32, 1, 8),
    ("angle", PointField.FLOAT32, 1, 12),
    ("response", PointField.FLOAT32, 1, 16),
    ("octave", PointField.INT32, 1, 20),
    ("class_id", PointField.INT32, 1, 24),
    ("descriptor", PointField.UINT8, 128, 28),
]
_SIZES = {PointField.FLOAT32: 4, PointField.INT32: 4, PointField.UINT8: 1}
_CODES = {PointField.FLOAT32: "f4", PointField.INT32: "i4", PointField.UINT8: "u1"}


def random_features(n: int, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    return Features(
        xy=rng.uniform(0, 1280, (n, 2)).astype(np.float32),
        size=rng.uniform(1.5, 80, n).astype(np.float32),
        angle=rng.uniform(0, 360, n).astype(np.float32),
        response=rng.uniform(0, 0.2, n).astype(np.float32),
        # OpenCV-packed octaves, including octave -1 (255) and large sub-scale bits.
        octave=(rng.integers(0, 256, n) | rng.integers(0, 4, n) << 8
                | rng.integers(0, 256, n) << 16).astype(np.int32),
        descriptors=rng.integers(0, 256, (n, 128)).astype(np.uint8),
    )


def make_header() -> Header:
    return Header(stamp=Time(sec=1_700_000_123, nanosec=456_789), frame_id="camera_optical")


def assert_features_equal(a: Features, b: Features) -> None:
    assert len(a) == len(b)
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def custom_cloud(features: Features, order: list[str], gap: int = 0, tail: int = 0,
                 row_pad: int = 0, height: int = 1, big_endian: bool = False,
                 class_id: np.ndarray | None = None) -> PointCloud2:
    """A feature cloud laid out differently from ours: given field order, ``gap`` bytes between
    fields, ``tail`` bytes after the last, ``row_pad`` bytes per row, organised ``height``."""
    layout = {name: (datatype, count) for name, datatype, count in FIELD_LAYOUT}
    n = len(features)
    assert n % height == 0
    width = n // height
    endian = ">" if big_endian else "<"
    names, formats, offsets, fields, offset = [], [], [], [], 3  # odd start offset: unaligned
    for name in order:
        datatype, count = layout[name]
        names.append(name)
        formats.append((endian + _CODES[datatype], (count,)) if count > 1
                       else endian + _CODES[datatype])
        offsets.append(offset)
        fields.append(PointField(name=name, offset=offset, datatype=datatype, count=count))
        offset += _SIZES[datatype] * count + gap
    point_step = offset + tail
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                      "itemsize": point_step})
    points = np.zeros(n, dtype)
    values = {"x": features.xy[:, 0], "y": features.xy[:, 1], "size": features.size,
              "angle": features.angle, "response": features.response,
              "octave": features.octave, "descriptor": features.descriptors,
              "class_id": class_id if class_id is not None else np.full(n, -1)}
    for name in order:
        points[name] = values[name]
    raw = np.full((height, width * point_step + row_pad), 0xEE, np.uint8)  # junk padding
    raw[:, : width * point_step] = points.view(np.uint8).reshape(height, -1)
    msg = PointCloud2(header=make_header(), height=height, width=width, fields=fields,
                      is_bigendian=big_endian, point_step=point_step,
                      row_step=width * point_step + row_pad, is_dense=True)
    msg.data = raw.tobytes()
    return msg


def test_round_trip_exact():
    features = random_features(257)
    ids = np.arange(257, dtype=np.int32) - 100
    msg = features_to_cloud(features, make_header(), class_id=ids)
    parsed, parsed_ids = read_feature_cloud(msg)
    assert_features_equal(parsed, features)
    np.testing.assert_array_equal(parsed_ids, ids)
    assert parsed_ids.dtype == np.int32
    assert_features_equal(cloud_to_features(msg), features)


def test_header_copied_not_aliased():
    header = make_header()
    msg = features_to_cloud(random_features(3), header)
    assert msg.header == header
    header.frame_id = "changed"
    header.stamp.sec = 1
    assert msg.header.frame_id == "camera_optical"
    assert msg.header.stamp.sec == 1_700_000_123
    assert msg.header.stamp.nanosec == 456_789


def test_layout_matches_design_notes():
    n = 11
    msg = features_to_cloud(random_features(n), make_header())
    got = [(f.name, f.datatype, f.count, f.offset) for f in msg.fields]
    assert got == EXPECTED_LAYOUT
    assert POINT_STEP == 4 * 7 + 128 == 156
    assert (msg.height, msg.width) == (1, n)
    assert msg.point_step == 156
    assert msg.row_step == 156 * n
    assert msg.is_bigendian is False
    assert msg.is_dense is True
    assert len(msg.data) == 156 * n


def test_default_class_id_is_minus_one():
    msg = features_to_cloud(random_features(5), make_header())
    _, ids = read_feature_cloud(msg)
    np.testing.assert_array_equal(ids, np.full(5, -1, np.int32))


def test_class_id_shape_checked():
    with pytest.raises(FeatureCloudError, match=r"class_id has shape \(4,\), expected \(5,\)"):
        features_to_cloud(random_features(5), make_header(), class_id=np.zeros(4))


def test_features_from_cloud_gives_opencv_keypoints():
    features = random_features(20)
    ids = np.arange(20, dtype=np.int32)
    keypoints, descriptors = features_from_cloud(
        features_to_cloud(features, make_header(), class_id=ids))
    assert len(keypoints) == 20
    np.testing.assert_array_equal(descriptors, features.descriptors)
    assert descriptors.dtype == np.uint8 and descriptors.shape == (20, 128)
    for i, kp in enumerate(keypoints):
        # cv2.KeyPoint stores float32, so the values come back bit-exact.
        assert kp.pt == (features.xy[i, 0], features.xy[i, 1])
        assert np.float32(kp.size) == features.size[i]
        assert np.float32(kp.angle) == features.angle[i]
        assert np.float32(kp.response) == features.response[i]
        assert kp.octave == features.octave[i]
        assert kp.class_id == ids[i]


def test_empty_cloud_round_trips():
    msg = features_to_cloud(Features.empty(), make_header())
    assert (msg.width, msg.height, msg.row_step, len(msg.data)) == (0, 1, 0, 0)
    parsed = cloud_to_features(deserialize_message(serialize_message(msg), PointCloud2))
    assert_features_equal(parsed, Features.empty())
    keypoints, descriptors = features_from_cloud(msg)
    assert keypoints == [] and descriptors.shape == (0, 128)


def test_cdr_serialization_round_trip():
    features = random_features(64, seed=3)
    ids = np.arange(64, dtype=np.int32)
    msg = features_to_cloud(features, make_header(), class_id=ids)
    raw = serialize_message(msg)
    assert len(raw) > 156 * 64
    back = deserialize_message(raw, PointCloud2)
    assert back == msg
    parsed, parsed_ids = read_feature_cloud(back)
    assert_features_equal(parsed, features)
    np.testing.assert_array_equal(parsed_ids, ids)


def test_rosbags_deserialized_cloud_parses():
    # Bag replay hands over rosbags dataclasses (numpy data, duck-typed fields).
    from rosbags.typesys import Stores, get_typestore

    features = random_features(9)
    raw = serialize_message(features_to_cloud(features, make_header()))
    msg = get_typestore(Stores.ROS2_KILTED).deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2")
    assert_features_equal(cloud_to_features(msg), features)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("height", [1, 3])
def test_shuffled_padded_layout_parsed(big_endian, height):
    features = random_features(30, seed=7)
    ids = np.arange(30, dtype=np.int32) * 3
    order = ["descriptor", "octave", "y", "class_id", "response", "x", "angle", "size"]
    msg = custom_cloud(features, order, gap=2, tail=9, row_pad=13, height=height,
                       big_endian=big_endian, class_id=ids)
    assert msg.point_step != POINT_STEP
    parsed, parsed_ids = read_feature_cloud(msg)
    assert_features_equal(parsed, features)
    np.testing.assert_array_equal(parsed_ids, ids)
    # Parsed arrays are native-endian copies, not views of the message buffer.
    assert parsed.xy.dtype.byteorder in ("=", "<")


def test_missing_class_id_is_optional():
    features = random_features(6)
    order = [name for name, _, _ in FIELD_LAYOUT if name != "class_id"]
    parsed, ids = read_feature_cloud(custom_cloud(features, order))
    assert_features_equal(parsed, features)
    np.testing.assert_array_equal(ids, np.full(6, -1, np.int32))


def good_cloud() -> PointCloud2:
    return features_to_cloud(random_features(4), make_header())


def _field(msg: PointCloud2, name: str) -> PointField:
    return next(f for f in msg.fields if f.name == name)


def _drop_field(msg: PointCloud2, name: str) -> None:
    msg.fields = [f for f in msg.fields if f.name != name]


def _set(msg: PointCloud2, **values) -> None:
    for key, value in values.items():
        setattr(msg, key, value)


BAD_CASES = {
    "missing descriptor": (lambda m: _drop_field(m, "descriptor"),
                           r"field 'descriptor' is missing \(fields: 'x', 'y'"),
    "missing x": (lambda m: _drop_field(m, "x"), r"field 'x' is missing"),
    "no fields": (lambda m: _set(m, fields=[]), r"field 'x' is missing \(fields: none\)"),
    "x is FLOAT64": (lambda m: _set(_field(m, "x"), datatype=PointField.FLOAT64),
                     r"field 'x' has datatype FLOAT64, expected FLOAT32"),
    "octave is FLOAT32": (lambda m: _set(_field(m, "octave"), datatype=PointField.FLOAT32),
                          r"field 'octave' has datatype FLOAT32, expected INT32"),
    "descriptor is FLOAT32": (lambda m: _set(_field(m, "descriptor"),
                                             datatype=PointField.FLOAT32),
                              r"field 'descriptor' has datatype FLOAT32, expected UINT8"),
    "unknown datatype": (lambda m: _set(_field(m, "size"), datatype=42),
                         r"field 'size' has datatype unknown datatype 42, expected FLOAT32"),
    "descriptor count 64": (lambda m: _set(_field(m, "descriptor"), count=64),
                            r"field 'descriptor' has count 64, expected 128"),
    "scalar count 0": (lambda m: _set(_field(m, "angle"), count=0),
                       r"field 'angle' has count 0, expected 1"),
    "duplicate field": (lambda m: _set(m, fields=[*m.fields, PointField(
        name="x", offset=0, datatype=PointField.FLOAT32, count=1)]),
        r"field 'x' appears more than once"),
    "point_step too small": (lambda m: _set(m, point_step=150, row_step=600),
                             r"point_step 150 is too small: field 'descriptor' at offset 28 "
                             r"needs 156 bytes"),
    "truncated": (lambda m: _set(m, data=bytes(m.data)[:-1]),
                  r"data is truncated: 623 bytes, expected row_step 624 x height 1 = 624"),
    "too long": (lambda m: _set(m, data=bytes(m.data) + b"\0"), r"data is too long: 625 bytes"),
    "width too large": (lambda m: _set(m, width=5),
                        r"width 5 x point_step 156 = 780 bytes does not fit in row_step 624"),
    "height too large": (lambda m: _set(m, height=2),
                         r"data is truncated: 624 bytes, expected row_step 624 x height 2"),
    "height zero with data": (lambda m: _set(m, height=0), r"data is too long: 624 bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_cloud_raises(case):
    corrupt, pattern = BAD_CASES[case]
    msg = good_cloud()
    corrupt(msg)
    for parse in (cloud_to_features, features_from_cloud, read_feature_cloud):
        with pytest.raises(FeatureCloudError, match=pattern):
            parse(msg)
    assert issubclass(FeatureCloudError, ValueError)
