"""Validation and conversion of input images to the float gray tensor the SIFT works on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

MIN_SIDE = 16
MAX_PIXELS = 8192 * 8192


class InvalidImageError(ValueError):
    """An image the pipeline cannot process; the message says why."""


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """Validate an image and convert it to (H, W) float32 gray in 0..255 (OpenCV SIFT units).

    Accepts (H, W), (H, W, 1), (H, W, 3) BGR and (H, W, 4) BGRA arrays of uint8, uint16
    (scaled by 255/65535, not truncated) or float (already 0..255, as ``cv2.SIFT`` assumes).

    Raises:
        InvalidImageError: wrong type, dimensions, size, dtype or non-finite values.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        pass
    elif image.ndim != 2:
        raise InvalidImageError(
            f"expected an (H, W) or (H, W, 1|3|4) image, got shape {image.shape}")
    h, w = image.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InvalidImageError(f"image {w}x{h} is too small: both sides must be >= {MIN_SIDE} px")
    if h * w > MAX_PIXELS:
        raise InvalidImageError(f"image {w}x{h} is too large: at most {MAX_PIXELS} pixels")
    if image.dtype == np.uint8:
        scale = 1.0
    elif image.dtype == np.uint16:
        scale = 255.0 / 65535.0
    elif image.dtype in (np.float32, np.float64, np.float16):
        if not np.isfinite(image).all():
            raise InvalidImageError("image contains NaN or infinite values")
        scale = 1.0
    else:
        raise InvalidImageError(f"unsupported image dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(image if image.dtype != np.float64 else image.astype(np.float32),
                             code)
    gray = image.astype(np.float32)
    return gray * np.float32(scale) if scale != 1.0 else gray


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 gray.

    Raises:
        InvalidImageError: the file is missing or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidImageError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise InvalidImageError(f"{path}: not a readable image")
    return image


def as_tensor(gray: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W) float32 array -> (1, 1, H, W) tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None, None].to(device)
