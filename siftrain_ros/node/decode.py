"""Incoming image messages -> arrays the front end takes, with one error type for bad input.

``siftrain_ros.ros.image_conversion`` handles the integer encodings (mono/bgr/rgb/bgra/rgba
8 and 16, bayer, compressed). Float intensity images (``32FC1``) are handled here because they
need a check the integer paths do not: NaN/inf pixels, which would poison the scale space.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ros.image_conversion import ImageConversionError, compressed_msg_to_gray, image_msg_to_gray

FLOAT_ENCODINGS = ("32FC1",)


def _float_gray(msg: Any) -> np.ndarray:
    """A ``32FC1`` image as (H, W) float32, honouring step and is_bigendian. Values are read
    as intensities in 0..255 (OpenCV SIFT units), as the front end takes float images."""
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    if step < 4 * width:
        raise ImageConversionError(f"step {step} is smaller than width {width} x 4 bytes per "
                                   f"pixel = {4 * width} for 32FC1")
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < step * height:
        raise ImageConversionError(f"data is truncated: {data.size} bytes, expected step {step} "
                                   f"x height {height} = {step * height}")
    dtype = np.dtype(">f4" if msg.is_bigendian else "<f4")
    view = np.ndarray((height, width), dtype=dtype, buffer=data, strides=(step, 4))
    gray = np.ascontiguousarray(view, dtype=np.float32)
    if not np.isfinite(gray).all():
        raise ImageConversionError(f"32FC1 image has {int((~np.isfinite(gray)).sum())} "
                                   f"non-finite (NaN/inf) pixels")
    return gray


def decode_image(msg: Any) -> np.ndarray:
    """``sensor_msgs/Image`` or ``CompressedImage`` -> (H, W) gray (uint8, or float32 0..255).

    Raises:
        ImageConversionError: the frame cannot be used (the message says why).
    """
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_msg_to_gray(msg)
    if str(msg.encoding) in FLOAT_ENCODINGS:
        return _float_gray(msg)
    return image_msg_to_gray(msg)
