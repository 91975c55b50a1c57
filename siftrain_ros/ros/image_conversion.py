"""``sensor_msgs/Image`` and ``CompressedImage`` -> gray numpy arrays, and gray/BGR -> Image.

Output convention: (H, W) **uint8** gray by default. 16-bit sources (mono16, 16UC1, rgb16,
bgr16, rgba16, bgra16, bayer_*16) are converted to gray at 16 bits and then *scaled* by
255/65535 with rounding (never truncated to the low or high byte); ``keep_depth=True`` returns
the (H, W) uint16 gray instead, which ``siftrain_ros.sift.image.to_gray_float`` scales itself.

Backends (``available_backends()``, in order of preference for ``backend="auto"``):

- ``"cv_bridge"``: a ROS 2 installation's ``cv_bridge``, when importable *and* it passes a
  probe (row padding, big-endian mono16, bgr8). The PyPI ``cv-bridge`` 1.x is a ROS 1 copy
  that breaks under numpy 2 / OpenCV 5 and ignores ``step``: rejected by version and probe.
- ``"rosbags"``: ``rosbags.image`` (rosbags-image). It duck-types messages (reads encoding,
  width, height, is_bigendian, data), so rclpy messages work directly, but it ignores ``step``
  (padded rows come out sheared, silently): padded images are compacted before the call.
  Its 16 -> 8 bit scaling floors, so it is asked for 16-bit gray and we scale here. For
  CompressedImage it is plain ``cv2.imdecode(IMREAD_ANYCOLOR)``, which cuts 16-bit PNGs to
  8 bits (v >> 8), so compressed "auto" tries it after ``"numpy"``.
- ``"numpy"``: this module's own numpy/OpenCV implementation; always available.

All input validation happens here, before any backend runs, so every bad message raises
``ImageConversionError`` with the same text whichever backend is used. With ``"auto"`` a
backend that fails on a message that passed validation is skipped for the next one.

``sensor_msgs`` is imported only inside the functions that build messages; the readers accept
any duck-typed message (rclpy or ``rosbags`` types).
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from sensor_msgs.msg import Image

BACKENDS = ("cv_bridge", "rosbags", "numpy")
_SCALE_16_TO_8 = 255.0 / 65535.0


class ImageConversionError(ValueError):
    """An image message that cannot be converted; the message says why."""


@dataclass(frozen=True)
class _Encoding:
    channels: int
    dtype: type[np.generic]  # np.uint8 or np.uint16
    to_gray: int | None  # cv2 colour conversion code, None when already one channel
    generic: bool = False  # "8UC1"/"16UC1": no colour semantics (cv_bridge refuses mono8 there)

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * np.dtype(self.dtype).itemsize


def _encodings() -> dict[str, _Encoding]:
    table = {
        "mono8": _Encoding(1, np.uint8, None),
        "8UC1": _Encoding(1, np.uint8, None, generic=True),
        "mono16": _Encoding(1, np.uint16, None),
        "16UC1": _Encoding(1, np.uint16, None, generic=True),
    }
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        table[f"bgr{depth}"] = _Encoding(3, dtype, cv2.COLOR_BGR2GRAY)
        table[f"rgb{depth}"] = _Encoding(3, dtype, cv2.COLOR_RGB2GRAY)
        table[f"bgra{depth}"] = _Encoding(4, dtype, cv2.COLOR_BGRA2GRAY)
        table[f"rgba{depth}"] = _Encoding(4, dtype, cv2.COLOR_RGBA2GRAY)
        # OpenCV names Bayer codes after the 2x2 block starting at pixel (1, 1), so ROS
        # "rggb" (R at (0, 0)) is OpenCV "BG" (cv_bridge and rosbags-image map it the same way;
        # OpenCV >= 4.6 also spells it COLOR_BayerRGGB2GRAY, the same constant).
        table[f"bayer_rggb{depth}"] = _Encoding(1, dtype, cv2.COLOR_BayerBG2GRAY)
        table[f"bayer_bggr{depth}"] = _Encoding(1, dtype, cv2.COLOR_BayerRG2GRAY)
        table[f"bayer_gbrg{depth}"] = _Encoding(1, dtype, cv2.COLOR_BayerGR2GRAY)
        table[f"bayer_grbg{depth}"] = _Encoding(1, dtype, cv2.COLOR_BayerGB2GRAY)
    return table


ENCODINGS: dict[str, _Encoding] = _encodings()
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(sorted(ENCODINGS))


# --------------------------------------------------------------------------- backends


def _probe_messages() -> list[tuple[Any, str, np.ndarray]]:
    """(message, desired encoding, expected array) cases that the ROS 1 cv_bridge copy gets
    wrong: a padded row, big-endian 16-bit data, and a colour conversion."""
    padded = SimpleNamespace(height=2, width=3, encoding="mono8", is_bigendian=0, step=4,
                             data=bytes([1, 2, 3, 0, 4, 5, 6, 0]))
    big16 = SimpleNamespace(height=1, width=2, encoding="mono16", is_bigendian=1, step=4,
                            data=bytes([0x12, 0x34, 0xAB, 0xCD]))
    bgr = SimpleNamespace(height=1, width=1, encoding="bgr8", is_bigendian=0, step=3,
                          data=bytes([0, 0, 255]))
    return [
        (padded, "mono8", np.array([[1, 2, 3], [4, 5, 6]], np.uint8)),
        (big16, "mono16", np.array([[0x1234, 0xABCD]], np.uint16)),
        (bgr, "mono8", cv2.cvtColor(np.array([[[0, 0, 255]]], np.uint8), cv2.COLOR_BGR2GRAY)),
    ]


def _as_ros_image(fake: SimpleNamespace) -> Any:
    """A real ``sensor_msgs/Image`` for a probe case (cv_bridge may check the type)."""
    from sensor_msgs.msg import Image

    return Image(height=fake.height, width=fake.width, encoding=fake.encoding,
                 is_bigendian=fake.is_bigendian, step=fake.step, data=fake.data)


@functools.lru_cache(maxsize=1)
def _cv_bridge_status() -> tuple[Any, str]:
    """(working ROS 2 CvBridge instance or None, "ok" or why it is not used)."""
    try:
        import cv_bridge
    except ImportError as err:
        return None, f"not importable ({err})"
    except Exception as err:  # the ROS 1 copy can fail at import with other errors
        return None, f"import failed ({type(err).__name__}: {err})"
    try:
        version = importlib.metadata.version("cv_bridge")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    if version and version.split(".")[0].isdigit() and int(version.split(".")[0]) < 2:
        # ROS 1 releases are 1.x (PyPI "cv-bridge" 1.13); ROS 2 Humble and later ship 3.x/4.x.
        return None, f"cv_bridge {version} is the ROS 1 copy from PyPI, not a ROS 2 install"
    try:
        bridge = cv_bridge.CvBridge()
        for fake, desired, expected in _probe_messages():
            got = np.asarray(bridge.imgmsg_to_cv2(_as_ros_image(fake), desired))
            if got.shape != expected.shape or not np.array_equal(got, expected):
                return None, (f"failed the {fake.encoding} probe (step {fake.step}, "
                              f"is_bigendian {fake.is_bigendian}): not a working ROS 2 cv_bridge")
    except Exception as err:
        return None, f"failed the probe ({type(err).__name__}: {err})"
    return bridge, "ok"


@functools.lru_cache(maxsize=1)
def _rosbags_status() -> tuple[Any, str]:
    """(``rosbags.image`` module or None, "ok" or why it is not used)."""
    try:
        import rosbags.image as rosbags_image
    except Exception as err:
        return None, f"not importable ({type(err).__name__}: {err})"
    return rosbags_image, "ok"


def backend_status() -> dict[str, str]:
    """Each backend name -> "ok" or the reason it is unavailable (for logging at start-up)."""
    return {"cv_bridge": _cv_bridge_status()[1], "rosbags": _rosbags_status()[1], "numpy": "ok"}


def available_backends() -> tuple[str, ...]:
    """Usable backends in order of preference (``"numpy"`` is always last and present)."""
    return tuple(name for name, status in backend_status().items() if status == "ok")


def _backend_order(backend: str) -> tuple[str, ...]:
    if backend == "auto":
        return available_backends()
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose 'auto' or one of {BACKENDS}")
    status = backend_status()[backend]
    if status != "ok":
        raise ValueError(f"backend {backend!r} is not available: {status}")
    return (backend,)


def _run_backends(backend: str, convert: Callable[[str], np.ndarray], what: str,
                  auto_order: tuple[str, ...] = BACKENDS) -> np.ndarray:
    order = _backend_order(backend)
    if backend == "auto":
        order = tuple(name for name in auto_order if name in order)
    errors = []
    for name in order:
        try:
            return convert(name)
        except ImageConversionError:
            raise
        except Exception as err:  # backend quirk on a message that passed validation
            errors.append(f"{name}: {type(err).__name__}: {err}")
    raise ImageConversionError(f"could not convert {what}: " + "; ".join(errors))


# --------------------------------------------------------------------------- raw images


def _validate(msg: Any) -> tuple[_Encoding, np.ndarray]:
    """Check encoding, size, step and data length; return the encoding and the data bytes."""
    encoding = str(msg.encoding)
    enc = ENCODINGS.get(encoding)
    if enc is None:
        raise ImageConversionError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    row_bytes = width * enc.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width {width} x {enc.bytes_per_pixel} bytes per "
            f"pixel = {row_bytes} for {encoding}")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < step * height:
        raise ImageConversionError(
            f"data is truncated: {data.size} bytes, expected step {step} x height {height} = "
            f"{step * height}")
    # Longer data is tolerated (as cv_bridge does): only the first step * height bytes are read.
    return enc, data


def _native_array(msg: Any, enc: _Encoding, data: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) native-endian contiguous array, honouring step and is_bigendian."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(enc.dtype).itemsize
    dtype = np.dtype(enc.dtype).newbyteorder(">" if msg.is_bigendian else "<")
    # A strided view over the padded rows: no copy until the contiguous native result below.
    view = np.ndarray((height, width, enc.channels), dtype=dtype, buffer=data,
                      strides=(step, enc.channels * itemsize, itemsize))
    out = np.ascontiguousarray(view, dtype=enc.dtype)
    return out[..., 0] if enc.channels == 1 else out


def _compact(msg: Any, enc: _Encoding, data: np.ndarray) -> Any:
    """``msg`` itself when rows are unpadded, else a stand-in with step == width * bpp (for
    backends that ignore step)."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * enc.bytes_per_pixel
    if step == row_bytes:
        return msg
    rows = data[: step * height].reshape(height, step)[:, :row_bytes]
    return SimpleNamespace(header=getattr(msg, "header", None), height=height, width=width,
                           encoding=str(msg.encoding), is_bigendian=msg.is_bigendian,
                           step=row_bytes, data=np.ascontiguousarray(rows).tobytes())


def _gray_numpy(msg: Any, enc: _Encoding, data: np.ndarray) -> np.ndarray:
    image = _native_array(msg, enc, data)
    return image if enc.to_gray is None else cv2.cvtColor(image, enc.to_gray)


def _gray_rosbags(msg: Any, enc: _Encoding, data: np.ndarray) -> np.ndarray:
    rosbags_image = _rosbags_status()[0]
    # Ask for gray at the source depth: rosbags' own 16 -> 8 bit step floors instead of rounding.
    desired = None if enc.generic else ("mono16" if enc.dtype == np.uint16 else "mono8")
    return np.asarray(rosbags_image.image_to_cvimage(_compact(msg, enc, data), desired))


def _gray_cv_bridge(msg: Any, enc: _Encoding, data: np.ndarray) -> np.ndarray:
    bridge = _cv_bridge_status()[0]
    # cv_bridge refuses colour targets for the generic nUC1 encodings, so pass them through.
    desired = "passthrough" if enc.generic else ("mono16" if enc.dtype == np.uint16 else "mono8")
    return np.asarray(bridge.imgmsg_to_cv2(msg, desired))


_IMAGE_BACKENDS = {"numpy": _gray_numpy, "rosbags": _gray_rosbags, "cv_bridge": _gray_cv_bridge}


def _finish(gray: np.ndarray, shape: tuple[int, int], keep_depth: bool,
            source: np.ndarray) -> np.ndarray:
    """Check a backend's result, scale 16 -> 8 bits, and make sure it owns its memory."""
    if gray.ndim == 3 and gray.shape[2] == 1:
        gray = gray[..., 0]
    if gray.shape != shape or gray.dtype not in (np.uint8, np.uint16):
        raise RuntimeError(f"backend returned {gray.dtype} {gray.shape}, expected {shape}")
    if gray.dtype == np.uint16 and not keep_depth:
        # Rounds and saturates: 65535 -> 255, 257 * v -> v.
        return cv2.convertScaleAbs(gray, alpha=_SCALE_16_TO_8)
    if np.may_share_memory(gray, source):
        # Zero-copy paths alias msg.data; the caller must be free to modify the result.
        gray = gray.copy()
    return np.ascontiguousarray(gray)


def image_msg_to_gray(msg: Any, *, backend: str = "auto", keep_depth: bool = False) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` to gray.

    Supported encodings: ``SUPPORTED_ENCODINGS`` (mono8/16, 8UC1/16UC1, rgb/bgr/rgba/bgra 8
    and 16, bayer_rggb/bggr/gbrg/grbg 8 and 16). Row padding (``step``) and big-endian data
    (``is_bigendian``) are honoured.

    Args:
        msg: the Image message (rclpy or any duck-typed equivalent, e.g. rosbags).
        backend: "auto" (first of ``available_backends()``) or one of ``BACKENDS``.
        keep_depth: return uint16 for 16-bit sources instead of scaling to uint8.

    Returns:
        (H, W) uint8 gray, or (H, W) uint16 for 16-bit sources with ``keep_depth``; a new
        array (never a view of ``msg.data``).

    Raises:
        ImageConversionError: unsupported encoding, zero width/height, step smaller than a row,
            data shorter than step * height, or every backend failed.
        ValueError: unknown or unavailable ``backend``.
    """
    enc, data = _validate(msg)
    shape = (int(msg.height), int(msg.width))

    def convert(name: str) -> np.ndarray:
        return _finish(_IMAGE_BACKENDS[name](msg, enc, data), shape, keep_depth, data)

    return _run_backends(backend, convert, f"{msg.encoding} image {shape[1]}x{shape[0]}")


# --------------------------------------------------------------------------- compressed images


def _decoded_to_gray(image: np.ndarray | None, keep_depth: bool) -> np.ndarray:
    if image is None:
        raise RuntimeError("decoder returned no image")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        # cv2.imdecode gives BGR(A) order.
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3
                             else cv2.COLOR_BGRA2GRAY)
    if image.dtype == np.uint16 and not keep_depth:
        return cv2.convertScaleAbs(image, alpha=_SCALE_16_TO_8)
    if image.dtype not in (np.uint8, np.uint16):
        raise RuntimeError(f"decoded image has unsupported dtype {image.dtype}")
    return np.ascontiguousarray(image)


def _decode_numpy(msg: Any, data: np.ndarray) -> np.ndarray | None:
    # ANYDEPTH keeps 16-bit PNGs at 16 bits (OpenCV's own 16 -> 8 step is v >> 8). ANYCOLOR
    # rather than gray decoding: the decoders' own colour -> gray differs from cv2.cvtColor by
    # 1 level, and a colour image must give the same gray as the same pixels sent as bgr8.
    return cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)


def _decode_rosbags(msg: Any, data: np.ndarray) -> np.ndarray | None:
    # No colour_space: rosbags' "mono8" path runs BGR2GRAY even on gray JPEG/PNGs (cv2.error),
    # and its decode asserts on bad data, so only the plain decode is used; gray is made here.
    return _rosbags_status()[0].compressed_image_to_cvimage(msg)


def _decode_cv_bridge(msg: Any, data: np.ndarray) -> np.ndarray | None:
    return _cv_bridge_status()[0].compressed_imgmsg_to_cv2(msg, "passthrough")


_COMPRESSED_BACKENDS = {"numpy": _decode_numpy, "rosbags": _decode_rosbags,
                        "cv_bridge": _decode_cv_bridge}


def compressed_msg_to_gray(msg: Any, *, backend: str = "auto",
                           keep_depth: bool = False) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG or anything ``cv2.imdecode`` reads;
    the codec is detected from the data, ``format`` is only checked for compressedDepth).

    Returns:
        (H, W) uint8 gray (16-bit PNGs scaled by 255/65535 with rounding), or uint16 for
        16-bit PNGs with ``keep_depth``.

    Raises:
        ImageConversionError: empty or undecodable data, or a compressedDepth image (its
            12-byte header and depth quantisation are not supported).
        ValueError: unknown or unavailable ``backend``.
    """
    fmt = str(getattr(msg, "format", ""))
    if "compresseddepth" in fmt.lower():
        raise ImageConversionError(f"unsupported CompressedImage format {fmt!r} (compressedDepth)")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size == 0:
        raise ImageConversionError(f"CompressedImage (format {fmt!r}) has no data")

    def convert(name: str) -> np.ndarray:
        return _decoded_to_gray(_COMPRESSED_BACKENDS[name](msg, data), keep_depth)

    try:
        # rosbags last under "auto": it is OpenCV's decoder with 16-bit PNGs cut to 8 bits.
        return _run_backends(backend, convert, f"CompressedImage (format {fmt!r})",
                             auto_order=("cv_bridge", "numpy", "rosbags"))
    except ImageConversionError:
        # Backends fail differently on bad data (rosbags asserts, OpenCV returns None): give
        # one clear error when the bytes are not an image at all.
        if cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) is None:
            raise ImageConversionError(
                f"could not decode CompressedImage (format {fmt!r}, {data.size} bytes, "
                f"starting {bytes(data[:8]).hex()}): not a JPEG/PNG, or corrupt") from None
        raise


# --------------------------------------------------------------------------- outgoing images


def _copy_header(header: Any) -> Any:
    """A fresh ``std_msgs/Header`` with the same stamp and frame_id (never restamp, never
    alias the input header)."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(stamp=Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
                  frame_id=str(header.frame_id))


def _array_to_image_msg(image: np.ndarray, encoding: str, header: Any) -> Image:
    from sensor_msgs.msg import Image

    image = np.ascontiguousarray(image)
    msg = Image()
    msg.header = _copy_header(header)
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    # Native order of the data we write; ROS consumers byte-swap when it differs from theirs.
    msg.is_bigendian = int(image.dtype.itemsize > 1 and sys.byteorder == "big")
    msg.step = int(image.strides[0])
    msg.data = image.tobytes()
    return msg


def gray_to_image_msg(gray: np.ndarray, header: Any) -> Image:
    """(H, W) or (H, W, 1) gray -> ``sensor_msgs/Image``: uint8 as mono8, uint16 as mono16.

    The header's stamp and frame_id are copied; step is W (mono8) or 2 W (mono16), unpadded.

    Raises:
        ImageConversionError: wrong shape or dtype, or zero width/height.
    """
    gray = np.asarray(gray)
    if gray.ndim == 3 and gray.shape[2] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2 or gray.dtype not in (np.uint8, np.uint16):
        raise ImageConversionError(
            f"expected (H, W) uint8 or uint16 gray, got {gray.dtype} {gray.shape}")
    if gray.size == 0:
        raise ImageConversionError(f"empty image: shape {gray.shape}")
    return _array_to_image_msg(gray, "mono8" if gray.dtype == np.uint8 else "mono16", header)


def bgr_to_image_msg(bgr: np.ndarray, header: Any) -> Image:
    """(H, W, 3) uint8 BGR -> bgr8 ``sensor_msgs/Image`` (step 3 W), header copied.

    Raises:
        ImageConversionError: wrong shape or dtype, or zero width/height.
    """
    bgr = np.asarray(bgr)
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ImageConversionError(f"expected (H, W, 3) uint8 BGR, got {bgr.dtype} {bgr.shape}")
    if bgr.size == 0:
        raise ImageConversionError(f"empty image: shape {bgr.shape}")
    return _array_to_image_msg(bgr, "bgr8", header)
