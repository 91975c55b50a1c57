"""Rain on real images: input checks, value ranges and dtypes, clean/rainy training pairs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .haze import composite
from .params import RainParams, draw
from .streaks import rain_layer

_INT_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _full_scale(image: np.ndarray, value_range: float | None) -> float:
    """Value of full white: fixed for integer dtypes, 1 or 255 for floats."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}")
    if image.dtype in _INT_RANGES:
        return _INT_RANGES[image.dtype] if value_range is None else float(value_range)
    if image.dtype not in (np.float32, np.float64):
        raise ValueError(f"image dtype must be uint8, uint16, float32 or float64, "
                         f"got {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    if value_range is not None:
        return float(value_range)
    # A float image is taken as 0..1 unless it holds values above 1; pass value_range for a
    # 0..255 image that happens to be all dark.
    peak = float(image.max())
    if peak <= 1.0:
        return 1.0
    if peak <= 255.0:
        return 255.0
    raise ValueError(f"float image must be in 0..1 or 0..255 (max is {peak:g}); "
                     f"pass value_range for other scales")


def add_rain(image: np.ndarray, seed: int, params: RainParams | None = None, *,
             value_range: float | None = None) -> np.ndarray:
    """Render synthetic rain (streak layers and veil) onto an image.

    The rain depends only on ``seed``, ``params`` and the image size: the same seed renders
    the same rain on any image of that size, and bit-identical output for the same input.

    Args:
        image: (H, W), (H, W, 1) or (H, W, 3) image, uint8 (0..255), uint16 (0..65535) or
            float32/float64 in 0..1 or 0..255 (inferred from the maximum; see ``value_range``).
        seed: seed of the numpy random generator, an integer >= 0.
        params: ranges of the rain model; ``None`` means ``RainParams()`` (medium).
        value_range: full-white value of ``image``, overriding the inferred one.

    Returns:
        Rainy image of the same shape and dtype, clipped to ``0..value_range`` (integers
        rounded to nearest).

    Raises:
        ValueError: empty image, wrong shape or dtype, non-finite values, unknown float range,
            or a negative seed.
    """
    full = _full_scale(image, value_range)
    if not full > 0:
        raise ValueError(f"value_range must be > 0, got {value_range}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    params = RainParams() if params is None else params
    rng = np.random.default_rng(int(seed))
    streaks = rain_layer(image.shape[:2], rng, params)
    transmission = draw(rng, params.transmission)
    airlight = draw(rng, params.airlight)

    background = image.astype(np.float32) * np.float32(1.0 / full)
    if image.ndim == 3 and image.shape[2] == 1:
        background = background[..., 0]
    rainy = composite(background, streaks, transmission, airlight)
    rainy *= np.float32(full)
    if image.dtype.kind == "u":
        np.rint(rainy, out=rainy)
    return rainy.reshape(image.shape).astype(image.dtype)


def rainy_pairs(clean_paths: Iterable[str | Path], seed: int, params: RainParams | None = None,
                *, gray: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rainy, clean)`` uint8 pairs for training or demos, one per image file.

    Each image gets its own seed derived from ``seed`` and its position in ``clean_paths``,
    so a run is reproducible and no two images share the same rain.

    Args:
        clean_paths: image files readable by OpenCV.
        seed: base seed, an integer >= 0.
        params: ranges of the rain model; ``None`` means ``RainParams()`` (medium).
        gray: read images as (H, W) gray (what SIFT uses); otherwise (H, W, 3) BGR.

    Raises:
        ValueError: a file is missing or not a readable image.
    """
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    for index, path in enumerate(clean_paths):
        path = Path(path)
        data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
        clean = cv2.imdecode(data, flag) if data is not None and data.size else None
        if clean is None:
            raise ValueError(f"{path}: missing or not a readable image")
        image_seed = int(np.random.SeedSequence((seed, index)).generate_state(1)[0])
        yield add_rain(clean, image_seed, params), clean
