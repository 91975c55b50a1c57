"""sensor_msgs/Image and CompressedImage -> gray, on every backend installed here.

All fixtures derive from one synthetic 37x29 BGR image, encoded into every supported encoding
(with and without row padding, big- and little-endian 16-bit data), and must all give the
same gray. rclpy / sensor_msgs import directly in the project venv (the ros-wheels-bootstrapper
.pth file re-executes the interpreter with LD_LIBRARY_PATH set).
"""

from __future__ import annotations

import sys
import types
from functools import lru_cache

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from siftrain_ros.ros import image_conversion as ic
from siftrain_ros.ros.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    available_backends,
    backend_status,
    bgr_to_image_msg,
    compressed_msg_to_gray,
    gray_to_image_msg,
    image_msg_to_gray,
)

H, W = 29, 37
BACKENDS = available_backends()
BAYER_PATTERNS = ("rggb", "bggr", "gbrg", "grbg")
# ROS pattern -> OpenCV code, for the independent demosaic+gray reference (OpenCV names the
# block starting at pixel (1, 1)).
BAYER_TO_BGR = {"rggb": cv2.COLOR_BayerBG2BGR, "bggr": cv2.COLOR_BayerRG2BGR,
                "gbrg": cv2.COLOR_BayerGR2BGR, "grbg": cv2.COLOR_BayerGB2BGR}


@lru_cache(maxsize=1)
def base_bgr() -> np.ndarray:
    """(29, 37, 3) uint8: B ramps along x, R along y, G a smooth wave (smooth so that Bayer
    demosaicing is nearly exact, colourful so that a wrong Bayer pattern is obvious)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    b = 255 * x / (W - 1)
    g = 128 + 60 * np.sin(x / 5 + y / 7)
    r = 255 * y / (H - 1)
    return np.clip(np.rint(np.stack([b, g, r], -1)), 0, 255).astype(np.uint8)


def base_gray() -> np.ndarray:
    return cv2.cvtColor(base_bgr(), cv2.COLOR_BGR2GRAY)


def to16(image: np.ndarray) -> np.ndarray:
    """8 -> 16 bits as a camera would give it: 257 v plus low-order noise that scaling by
    255/65535 with rounding removes (but a byte truncation would not)."""
    noise = np.random.default_rng(1).integers(0, 120, image.shape)
    return np.minimum(image.astype(np.int64) * 257 + noise, 65535).astype(np.uint16)


def mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """Bayer raw image for a ROS pattern (letters of the 2x2 block from pixel (0, 0))."""
    channel = {"b": 0, "g": 1, "r": 2}
    raw = np.empty(bgr.shape[:2], bgr.dtype)
    for letter, (dy, dx) in zip(pattern, ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True):
        raw[dy::2, dx::2] = bgr[dy::2, dx::2, channel[letter]]
    return raw


def pixels_for(encoding: str) -> np.ndarray:
    """The base image as the (H, W[, C]) array an ``encoding`` camera would send."""
    bgr = base_bgr()
    depth16 = encoding.endswith("16") or encoding == "16UC1"
    src = to16(bgr) if depth16 else bgr
    if encoding in ("mono8", "8UC1", "mono16", "16UC1"):
        gray = base_gray()
        return to16(gray) if depth16 else gray
    if encoding.startswith("bayer_"):
        return mosaic(src, encoding[6:10])
    alpha = np.full((H, W, 1), 65535 if depth16 else 255, src.dtype)
    return {"bgr": src, "rgb": src[..., ::-1],
            "bgra": np.concatenate([src, alpha], -1),
            "rgba": np.concatenate([src[..., ::-1], alpha], -1)}[encoding.rstrip("816")]


def make_image(encoding: str, pad: int = 0, big_endian: bool = False) -> Image:
    """An Image message for the base image, rows padded by ``pad`` junk bytes."""
    pixels = pixels_for(encoding)
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if big_endian else "<u2")
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(H, -1)
    # 0xA5 junk: a converter that ignores step shears the image and picks it up.
    data = np.full((H, rows.shape[1] + pad), 0xA5, np.uint8)
    data[:, : rows.shape[1]] = rows
    return Image(header=make_header(), height=H, width=W, encoding=encoding,
                 is_bigendian=int(big_endian), step=data.shape[1], data=data.tobytes())


def make_header() -> Header:
    return Header(stamp=Time(sec=42, nanosec=7), frame_id="camera")


def expected_gray(encoding: str) -> np.ndarray:
    """Independent reference: decode with OpenCV only, then scale 16-bit with rounding."""
    pixels = pixels_for(encoding)
    if encoding.startswith("bayer_"):
        gray = cv2.cvtColor(cv2.cvtColor(pixels, BAYER_TO_BGR[encoding[6:10]]),
                            cv2.COLOR_BGR2GRAY)
    elif pixels.ndim == 3:
        code = {"bgr": cv2.COLOR_BGR2GRAY, "rgb": cv2.COLOR_RGB2GRAY,
                "bgra": cv2.COLOR_BGRA2GRAY, "rgba": cv2.COLOR_RGBA2GRAY}
        gray = cv2.cvtColor(pixels, code[encoding.rstrip("816")])
    else:
        gray = pixels
    if gray.dtype == np.uint16:
        gray = np.rint(gray * (255 / 65535)).astype(np.uint8)
    return gray


def is16(encoding: str) -> bool:
    return encoding.endswith("16") or encoding == "16UC1"


CASES = [(enc, pad, big) for enc in SUPPORTED_ENCODINGS for pad in (0, 5)
         for big in ((False, True) if is16(enc) or enc == "bgr8" else (False,))]


def case_id(case: tuple[str, int, bool]) -> str:
    enc, pad, big = case
    return f"{enc}-pad{pad}" + ("-be" if big else "")


def test_encoding_table_covers_the_brief():
    wanted = {"mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "8UC1", "16UC1", "rgb16",
              "bgr16", "rgba16", "bgra16"}
    wanted |= {f"bayer_{p}{d}" for p in BAYER_PATTERNS for d in (8, 16)}
    assert wanted <= set(SUPPORTED_ENCODINGS)


def test_backends_available_here():
    assert "numpy" in BACKENDS and BACKENDS[-1] == "numpy"
    assert "rosbags" in BACKENDS, backend_status()
    status = backend_status()
    assert set(status) == {"cv_bridge", "rosbags", "numpy"}
    assert all(status[name] == "ok" for name in BACKENDS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_encoding_gives_the_same_gray(backend, case):
    encoding, pad, big_endian = case
    msg = make_image(encoding, pad, big_endian)
    gray = image_msg_to_gray(msg, backend=backend)
    assert gray.dtype == np.uint8 and gray.shape == (H, W)
    assert gray.flags.c_contiguous
    reference = expected_gray(encoding)
    truth = base_gray().astype(int)
    if encoding.startswith("bayer_"):
        # Demosaicing to gray directly vs via BGR differs by rounding only; against the true
        # gray a wrong pattern is off by 16+ grey levels on average, the right one by < 1.
        assert np.abs(gray.astype(int) - reference).max() <= 2
        assert np.abs(gray.astype(int) - truth).mean() < 1.5
        assert np.abs(gray.astype(int) - truth)[2:-2, 2:-2].max() <= 3
    elif is16(encoding):
        assert np.abs(gray.astype(int) - reference).max() <= 1
        assert np.abs(gray.astype(int) - truth).max() <= 1
    else:
        np.testing.assert_array_equal(gray, reference)
        np.testing.assert_array_equal(gray, base_gray())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backends_agree_exactly(case):
    msg = make_image(*case)
    results = {name: image_msg_to_gray(msg, backend=name) for name in BACKENDS}
    results["auto"] = image_msg_to_gray(msg)
    first = results["numpy"]
    for name, gray in results.items():
        np.testing.assert_array_equal(gray, first, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("big_endian", [False, True])
def test_mono16_keep_depth_and_scaling(backend, big_endian):
    pixels = np.array([[0, 1, 128, 129, 257, 32896, 65534, 65535]], np.uint16)
    data = pixels.astype(">u2" if big_endian else "<u2").tobytes() + b"\x00\x01"  # 2 pad bytes
    msg = Image(height=1, width=8, encoding="mono16", is_bigendian=int(big_endian), step=18,
                data=data)
    np.testing.assert_array_equal(image_msg_to_gray(msg, backend=backend, keep_depth=True),
                                  pixels)
    # Scaled by 255/65535 and rounded: not truncated to a byte.
    np.testing.assert_array_equal(image_msg_to_gray(msg, backend=backend),
                                  [[0, 0, 0, 1, 1, 128, 255, 255]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_keep_depth_is_noop_for_8_bit(backend):
    gray = image_msg_to_gray(make_image("bgr8", 3), backend=backend, keep_depth=True)
    assert gray.dtype == np.uint8


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("encoding", ["mono8", "mono16"])
def test_result_does_not_alias_message(backend, encoding):
    msg = make_image(encoding)
    before = bytes(msg.data)
    gray = image_msg_to_gray(msg, backend=backend, keep_depth=True)
    gray[:] = 0
    assert bytes(msg.data) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_rosbags_message_types_accepted(backend):
    from rosbags.typesys import Stores, get_typestore

    rclpy_msg = make_image("bayer_grbg16", pad=6, big_endian=True)
    msg = get_typestore(Stores.ROS2_KILTED).deserialize_cdr(serialize_message(rclpy_msg),
                                                            "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_msg_to_gray(msg, backend=backend),
                                  image_msg_to_gray(rclpy_msg, backend="numpy"))


def _image(**overrides) -> Image:
    msg = make_image("bgr8")
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


BAD_IMAGES = {
    "yuv422": (lambda: _image(encoding="yuv422"), r"unsupported encoding 'yuv422'; supported:"),
    "32FC1": (lambda: _image(encoding="32FC1"), r"unsupported encoding '32FC1'"),
    "empty encoding": (lambda: _image(encoding=""), r"unsupported encoding ''"),
    "zero width": (lambda: _image(width=0), r"empty image: 0x29"),
    "zero height": (lambda: _image(height=0), r"empty image: 37x0"),
    "step too small": (lambda: _image(step=3 * W - 1),
                       r"step 110 is smaller than width 37 x 3 bytes per pixel = 111 for bgr8"),
    "step too small 16": (lambda: _image(encoding="mono16", step=W),
                          r"step 37 is smaller than width 37 x 2 bytes per pixel = 74"),
    "truncated": (lambda: _image(data=bytes(_image().data)[:-1]),
                  r"data is truncated: 3218 bytes, expected step 111 x height 29 = 3219"),
    "no data": (lambda: _image(data=b""), r"data is truncated: 0 bytes"),
    "padding makes it short": (lambda: _image(step=3 * W + 4),
                               r"data is truncated: 3219 bytes, expected step 115"),
}


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_raises(backend, case):
    build, pattern = BAD_IMAGES[case]
    with pytest.raises(ImageConversionError, match=pattern):
        image_msg_to_gray(build(), backend=backend)


def test_longer_data_is_tolerated():
    msg = _image(data=bytes(_image().data) + b"\xff" * 10)
    np.testing.assert_array_equal(image_msg_to_gray(msg), base_gray())


def test_backend_argument_checked():
    with pytest.raises(ValueError, match="unknown backend 'opencv'"):
        image_msg_to_gray(make_image("mono8"), backend="opencv")
    missing = [name for name, status in backend_status().items() if status != "ok"]
    for name in missing:
        with pytest.raises(ValueError, match=f"backend '{name}' is not available"):
            image_msg_to_gray(make_image("mono8"), backend=name)


# --------------------------------------------------------------------------- compressed


def compressed(image: np.ndarray, ext: str, fmt: str, params: tuple = ()) -> CompressedImage:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return CompressedImage(header=make_header(), format=fmt, data=buf.tobytes())


@pytest.mark.parametrize("backend", BACKENDS)
def test_compressed_png_round_trip(backend):
    gray = base_gray()
    bgra = np.concatenate([base_bgr(), np.full((H, W, 1), 200, np.uint8)], -1)
    for image, fmt in ((base_bgr(), "bgr8; png compressed bgr8"), (gray, "mono8; png"),
                       (bgra, "png")):
        out = compressed_msg_to_gray(compressed(image, ".png", fmt), backend=backend)
        assert out.dtype == np.uint8 and out.shape == (H, W), fmt
        np.testing.assert_array_equal(out, gray, err_msg=fmt)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compressed_jpeg_round_trip(backend):
    for image in (base_bgr(), base_gray()):
        msg = compressed(image, ".jpg", "jpeg", (cv2.IMWRITE_JPEG_QUALITY, 95))
        out = compressed_msg_to_gray(msg, backend=backend)
        assert out.dtype == np.uint8 and out.shape == (H, W)
        diff = np.abs(out.astype(int) - base_gray())
        assert diff.mean() < 1.5 and diff.max() <= 8


def test_compressed_png16_scaled_not_truncated():
    gray16 = to16(base_gray())
    msg = compressed(gray16, ".png", "mono16; png compressed")
    np.testing.assert_array_equal(compressed_msg_to_gray(msg, keep_depth=True), gray16)
    np.testing.assert_array_equal(compressed_msg_to_gray(msg), base_gray())
    # rosbags decodes with IMREAD_ANYCOLOR, which cuts 16-bit PNGs to v >> 8.
    if "rosbags" in BACKENDS:
        out = compressed_msg_to_gray(msg, backend="rosbags")
        assert np.abs(out.astype(int) - base_gray()).max() <= 1


BAD_COMPRESSED = {
    "garbage": (CompressedImage(format="jpeg", data=b"not an image at all"),
                r"could not decode CompressedImage \(format 'jpeg', 19 bytes, starting "
                r"6e6f7420616e2069\)"),
    "empty": (CompressedImage(format="png", data=b""), r"CompressedImage \(format 'png'\) has no "
              r"data"),
    "compressedDepth": (CompressedImage(format="16UC1; compressedDepth png", data=b"\0" * 20),
                        r"unsupported CompressedImage format '16UC1; compressedDepth png'"),
}


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
@pytest.mark.parametrize("case", sorted(BAD_COMPRESSED))
def test_bad_compressed_raises(backend, case):
    msg, pattern = BAD_COMPRESSED[case]
    with pytest.raises(ImageConversionError, match=pattern):
        compressed_msg_to_gray(msg, backend=backend)


def test_truncated_png_raises():
    data = bytes(compressed(base_bgr(), ".png", "png").data)
    with pytest.raises(ImageConversionError, match="could not decode"):
        compressed_msg_to_gray(CompressedImage(format="png", data=data[: len(data) // 2]))


# --------------------------------------------------------------------------- outgoing


def test_gray_to_image_msg_round_trip():
    header = make_header()
    msg = gray_to_image_msg(base_gray(), header)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (H, W, W, "mono8")
    assert msg.header == header
    header.frame_id = "changed"
    assert msg.header.frame_id == "camera"  # copied, not aliased
    back = deserialize_message(serialize_message(msg), Image)
    for backend in BACKENDS:
        np.testing.assert_array_equal(image_msg_to_gray(back, backend=backend), base_gray())


def test_gray16_to_mono16_round_trip():
    gray16 = to16(base_gray())
    msg = gray_to_image_msg(gray16[..., None], make_header())
    assert (msg.encoding, msg.step) == ("mono16", 2 * W)
    np.testing.assert_array_equal(image_msg_to_gray(msg, keep_depth=True), gray16)


def test_bgr_to_image_msg_round_trip():
    msg = bgr_to_image_msg(base_bgr(), make_header())
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian) == (
        H, W, 3 * W, "bgr8", 0)
    back = deserialize_message(serialize_message(msg), Image)
    assert bytes(back.data) == base_bgr().tobytes()
    np.testing.assert_array_equal(image_msg_to_gray(back), base_gray())


def test_non_contiguous_input_is_packed():
    view = base_bgr()[::2, ::-1]
    msg = bgr_to_image_msg(view, make_header())
    assert msg.step == 3 * view.shape[1]
    assert bytes(msg.data) == np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("array", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.uint8),
                                   np.zeros(4, np.uint8), np.zeros((0, 4), np.uint8)])
def test_gray_to_image_msg_rejects(array):
    with pytest.raises(ImageConversionError):
        gray_to_image_msg(array, make_header())


@pytest.mark.parametrize("array", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16),
                                   np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)])
def test_bgr_to_image_msg_rejects(array):
    with pytest.raises(ImageConversionError):
        bgr_to_image_msg(array, make_header())


# --------------------------------------------------------------------------- cv_bridge detection


class _StepIgnoringBridge:
    """Stand-in for the PyPI ROS 1 copy: reads rows as if step == width * bpp."""

    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
        enc = ic.ENCODINGS[msg.encoding]
        flat = np.frombuffer(bytes(msg.data), np.dtype(enc.dtype).newbyteorder(
            ">" if msg.is_bigendian else "<"))
        image = flat[: msg.height * msg.width * enc.channels].reshape(
            msg.height, msg.width, enc.channels).astype(enc.dtype)
        image = image[..., 0] if enc.channels == 1 else image
        return image if enc.to_gray is None else cv2.cvtColor(image, enc.to_gray)


class _WorkingBridge:
    """Stand-in for a ROS 2 cv_bridge (step- and endian-aware), to test the plumbing."""

    calls = 0

    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
        type(self).calls += 1
        enc, data = ic._validate(msg)
        image = ic._native_array(msg, enc, data)
        if desired_encoding == "passthrough" or enc.to_gray is None:
            return image
        return cv2.cvtColor(image, enc.to_gray)

    def compressed_imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
        type(self).calls += 1
        return cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def fake_cv_bridge(monkeypatch):
    """Install a fake ``cv_bridge`` module; the detection cache is cleared around the test."""

    def install(bridge_class, version=None):
        module = types.ModuleType("cv_bridge")
        module.CvBridge = bridge_class
        monkeypatch.setitem(sys.modules, "cv_bridge", module)
        if version is not None:
            real_version = ic.importlib.metadata.version
            monkeypatch.setattr(ic.importlib.metadata, "version",
                                lambda name: version if name == "cv_bridge"
                                else real_version(name))
        ic._cv_bridge_status.cache_clear()

    yield install
    ic._cv_bridge_status.cache_clear()


def test_step_ignoring_cv_bridge_rejected(fake_cv_bridge):
    fake_cv_bridge(_StepIgnoringBridge)
    assert "cv_bridge" not in available_backends()
    assert "failed the mono8 probe (step 4" in backend_status()["cv_bridge"]


def test_ros1_cv_bridge_version_rejected(fake_cv_bridge):
    fake_cv_bridge(_WorkingBridge, version="1.13.0.post0")
    assert "ROS 1 copy" in backend_status()["cv_bridge"]
    assert "cv_bridge" not in available_backends()


def test_cv_bridge_that_raises_rejected(fake_cv_bridge):
    class Broken:
        def __init__(self):
            raise AttributeError("module 'numpy' has no attribute 'float'")

    fake_cv_bridge(Broken)
    assert "AttributeError" in backend_status()["cv_bridge"]


def test_working_cv_bridge_preferred(fake_cv_bridge):
    fake_cv_bridge(_WorkingBridge, version="4.1.0")
    assert available_backends()[0] == "cv_bridge"
    _WorkingBridge.calls = 0
    for encoding in ("bayer_rggb16", "16UC1", "rgba8"):
        msg = make_image(encoding, pad=4, big_endian=True)
        np.testing.assert_array_equal(image_msg_to_gray(msg),
                                      image_msg_to_gray(msg, backend="numpy"))
    png = compressed(base_bgr(), ".png", "png")
    np.testing.assert_array_equal(compressed_msg_to_gray(png), base_gray())
    assert _WorkingBridge.calls == 4


def test_auto_falls_back_when_a_backend_fails(fake_cv_bridge):
    class FailsLater(_WorkingBridge):
        def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
            if msg.width == W:  # passes the tiny probes, fails on real images
                raise RuntimeError("boom")
            return super().imgmsg_to_cv2(msg, desired_encoding)

    fake_cv_bridge(FailsLater)
    assert available_backends()[0] == "cv_bridge"
    np.testing.assert_array_equal(image_msg_to_gray(make_image("bgr8")), base_gray())
    with pytest.raises(ImageConversionError, match="cv_bridge: RuntimeError: boom"):
        image_msg_to_gray(make_image("bgr8"), backend="cv_bridge")
