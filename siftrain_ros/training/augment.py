"""Random variations of the training crops: scale, dihedral pose and contrast.

The lite nets see 86 backgrounds (Rain100H 1..80 and 6 HPatches images) and the 80 real
Rain100H rain layers thousands of times each. On the Rain100H pairs they trained on, ours
recovers as many clean keypoints as SIFT on the rainy image; on the validation pairs it does
not (docs/recovery.md, "Round 11"). Rescaled, flipped, rotated and re-contrasted crops turn the
same images into many more, so memorising them pays less.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """How far a crop may vary.

    Attributes:
        min_scale: the crop is the image downscaled by ``s``, log-uniform in
            [min_scale, 1] (1 keeps the native scale; never upscaled, which would invent
            smooth texture). Clamped so the window fits the image.
        rotate: whether rain-free backgrounds may also turn by 90 degrees. Synthetic rain is
            rendered after this, so its streaks stay upright; real rainy pairs only get the
            flips, which keep streaks near vertical.
        contrast: range of the gain about the crop's mean intensity (the same for both planes
            of a pair). Below 1 it shrinks every DoG response, so weak structure near SIFT's
            contrast threshold is trained on too.
        brightness: range of the offset, +- gray levels.
    """

    min_scale: float = 0.5
    rotate: bool = True
    contrast: tuple[float, float] = (0.6, 1.0)
    brightness: float = 15.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"min_scale must be in (0, 1], got {self.min_scale}")
        low, high = self.contrast
        if not 0.0 < low <= high:
            raise ValueError(f"contrast must be 0 < low <= high, got {self.contrast}")
        if self.brightness < 0:
            raise ValueError(f"brightness must be >= 0, got {self.brightness}")


def augmented_crop(rng: np.random.Generator, planes: tuple[np.ndarray, ...], patch: int,
                   augmentation: Augmentation, rotate: bool) -> list[np.ndarray]:
    """One random (patch, patch) uint8 crop of each of ``planes``, all with the same window,
    scale, pose and contrast.

    Args:
        rng: the run's generator (every draw comes from it, so runs are reproducible).
        planes: (H, W) uint8 images of equal shape, e.g. (rainy, clean).
        patch: output side, pixels.
        augmentation: the ranges to draw from.
        rotate: allow 90-degree turns (only for crops that get their rain afterwards).

    Raises:
        ValueError: the image is smaller than ``patch``.
    """
    h, w = planes[0].shape
    if h < patch or w < patch:
        raise ValueError(f"image {w}x{h} smaller than patch {patch}")
    lowest = max(augmentation.min_scale, patch / min(h, w))
    scale = float(np.exp(rng.uniform(np.log(lowest), 0.0))) if lowest < 1.0 else 1.0
    side = min(int(round(patch / scale)), h, w)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    turns = int(rng.integers(0, 4)) if rotate and augmentation.rotate else 2 * int(
        rng.integers(0, 2))
    flip = bool(rng.integers(0, 2))
    gain = float(rng.uniform(*augmentation.contrast))
    offset = float(rng.uniform(-augmentation.brightness, augmentation.brightness))
    windows = [plane[y: y + side, x: x + side].astype(np.float32) for plane in planes]
    if side != patch:
        windows = [cv2.resize(win, (patch, patch), interpolation=cv2.INTER_AREA)
                   for win in windows]
    # The clean plane (last) fixes the mean, so rainy and clean get the same affine map.
    mean = float(windows[-1].mean())
    out = []
    for win in windows:
        win = np.rot90(win, turns)
        win = win[:, ::-1] if flip else win
        out.append(np.ascontiguousarray(
            np.clip(np.rint(mean + gain * (win - mean) + offset), 0, 255).astype(np.uint8)))
    return out
