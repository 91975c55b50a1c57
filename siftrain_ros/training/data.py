"""Training pairs: random gray crops of clean images with synthetic rain, plus real
Rain100H training pairs.

Sources (see /work/shared/data/README.md): Rain100H N = 1..80 (clean backgrounds for synthetic
rain *and* their real rainy/clean pairs) and the HPatches v_churchill images. Rain100H 81..100
and sirr_pairs are validation and never read here. The TUM frames are left out by default so
the synthetic-rain TUM evaluation runs on unseen backgrounds (``use_tum=True`` adds them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..rain import INTENSITIES, RainParams, add_rain
from ..sift import read_gray
from .augment import Augmentation, augmented_crop
from .transplant import lends_rain, transplant_rain

TRAIN_RAIN100H = range(1, 81)
# Rounds 1-15 knew only the first three presets; no dense rain keeps their data streams.
PRESET_PROBABILITIES = (0.2, 0.4, 0.4, 0.0)
_FIRST_PRESETS = 3


def checked_rain_mix(mix: tuple[float, ...]) -> tuple[float, ...]:
    """``mix`` as float probabilities of the presets in :data:`~siftrain_ros.rain.INTENSITIES`;
    a mix of the first three only (as rounds 1-15 wrote it) gets probability 0 for the others.

    Choosing among the presets with a trailing 0 draws the same random numbers and picks the
    same preset as choosing among the first three, so older runs replay exactly.

    Raises:
        ValueError: not one non-negative probability per preset, summing to 1.
    """
    if len(mix) == _FIRST_PRESETS:
        mix = (*mix, *(0.0,) * (len(INTENSITIES) - _FIRST_PRESETS))
    if len(mix) != len(INTENSITIES) or min(mix) < 0 or abs(sum(mix) - 1.0) > 1e-6:
        raise ValueError(f"rain_mix must be {len(INTENSITIES)} (or {_FIRST_PRESETS}) "
                         f"probabilities of {', '.join(INTENSITIES)} summing to 1, got {mix}")
    return tuple(float(p) for p in mix)


@dataclass
class TrainingImages:
    """Attributes:
        clean: (H, W) uint8 backgrounds for synthetic rain.
        real_pairs: (rainy, clean) (H, W) uint8 pairs with real (dataset) rain.
    """

    clean: list[np.ndarray]
    real_pairs: list[tuple[np.ndarray, np.ndarray]]


def _number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    return int(match.group(1)) if match else -1


def load_training_images(root: Path, use_tum: bool = False) -> TrainingImages:
    """Read the training images from the shared data folder ``root``.

    Raises:
        FileNotFoundError: a dataset folder is missing.
    """
    rain100h = root / "rain100h"
    if not (rain100h / "norain").is_dir():
        raise FileNotFoundError(f"{rain100h}/norain not found (set --data)")
    clean, pairs = [], []
    for path in sorted((rain100h / "norain").glob("norain-*.png"), key=_number):
        if _number(path) in TRAIN_RAIN100H:
            image = read_gray(path)
            clean.append(image)
            pairs.append((read_gray(rain100h / "rain" / path.name), image))
    clean += [read_gray(p) for p in sorted((root / "hpatches_v_churchill").glob("*.ppm"))]
    if use_tum:
        clean += [read_gray(p) for p in sorted((root / "tum_fr2_desk" / "rgb").glob("*.png"))]
    return TrainingImages(clean=clean, real_pairs=pairs)


class PatchSampler:
    """Draws batches of (rainy, clean) patches; every random choice comes from the caller's
    numpy Generator, so a run (and a resumed run) is reproducible.

    Args:
        images: the training images.
        patch: crop side, pixels (a multiple of 4 keeps the lite nets' unshuffle exact).
        real_fraction: share of samples taken from the real rainy pairs.
        transplant_fraction: share of those real-pair samples whose rain layer is laid over
            another clean training image (:func:`transplant_rain`), so the real rain comes
            with backgrounds the nets have not memorised. Only pairs that saturate little
            (:func:`lends_rain`) lend their rain.
        clean_fraction: share of rain-free samples (input = target = a clean crop), drawn
            before anything else. A derainer that never sees a dry crop learns to smooth
            every input, rain or not, and erases the fine structure SIFT lives on.
        rain_mix: probabilities of the light, medium, heavy and dense synthetic rain
            presets (non-negative, summing to 1; three values leave dense rain out).
        augmentation: random scale, pose and contrast of every crop (None: position and a
            horizontal flip only, as rounds 1-10).
    """

    def __init__(self, images: TrainingImages, patch: int, real_fraction: float = 0.3,
                 clean_fraction: float = 0.0, transplant_fraction: float = 0.0,
                 rain_mix: tuple[float, ...] = PRESET_PROBABILITIES,
                 augmentation: Augmentation | None = None):
        if not images.clean:
            raise ValueError("no clean training images")
        for name, value in (("real_fraction", real_fraction),
                            ("clean_fraction", clean_fraction),
                            ("transplant_fraction", transplant_fraction)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.images, self.patch = images, patch
        self.real_fraction, self.clean_fraction = real_fraction, clean_fraction
        self.transplant_fraction = transplant_fraction
        self.rain_sources = ([pair for pair in images.real_pairs if lends_rain(pair[0])]
                             if transplant_fraction > 0 else [])
        if transplant_fraction > 0 and not self.rain_sources:
            raise ValueError("transplant_fraction > 0 but no real pair saturates little enough "
                             "to lend its rain")
        self.rain_mix = checked_rain_mix(rain_mix)
        self.augmentation = augmentation

    def _clean_crop(self, rng: np.random.Generator) -> np.ndarray:
        (clean,) = self._crop(rng, self.images.clean[int(rng.integers(len(self.images.clean)))],
                              rotate=True)
        return clean

    def _crop(self, rng: np.random.Generator, *planes: np.ndarray,
              rotate: bool = False) -> list[np.ndarray]:
        if self.augmentation is not None:
            return augmented_crop(rng, planes, self.patch, self.augmentation, rotate)
        h, w = planes[0].shape
        p = self.patch
        if h < p or w < p:
            raise ValueError(f"image {w}x{h} smaller than patch {p}")
        y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        flip = bool(rng.integers(0, 2))
        out = [plane[y: y + p, x: x + p] for plane in planes]
        return [np.ascontiguousarray(o[:, ::-1]) if flip else o for o in out]

    def sample_one(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One (rainy, clean) (P, P) uint8 pair."""
        # Only draw for the dry share when it is asked for, so runs without it replay the
        # random stream (and the checkpoints) of earlier versions exactly.
        if self.clean_fraction > 0 and rng.random() < self.clean_fraction:
            clean = self._clean_crop(rng)
            return clean, clean
        if self.images.real_pairs and rng.random() < self.real_fraction:
            rainy, clean = self.images.real_pairs[int(rng.integers(len(self.images.real_pairs)))]
            # As for the dry share: draw only when asked, so older runs replay exactly. The
            # pair drawn above is then unused; drawing it anyway keeps round 14's stream.
            if self.transplant_fraction > 0 and rng.random() < self.transplant_fraction:
                rainy, clean = self.rain_sources[int(rng.integers(len(self.rain_sources)))]
                background = self.images.clean[int(rng.integers(len(self.images.clean)))]
                rainy, clean = transplant_rain(rainy, clean, background, rng)
            return tuple(self._crop(rng, rainy, clean))  # type: ignore[return-value]
        clean = self._clean_crop(rng)
        preset = INTENSITIES[int(rng.choice(len(INTENSITIES), p=self.rain_mix))]
        rainy = add_rain(clean, seed=int(rng.integers(0, 2**31 - 1)),
                         params=RainParams.preset(preset))  # type: ignore[arg-type]
        return rainy, clean

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: rainy, clean (B, 1, P, P) float32 tensors, intensity 0..1."""
        pairs = [self.sample_one(rng) for _ in range(batch)]
        rainy = torch.from_numpy(np.stack([p[0] for p in pairs])[:, None].astype(np.float32))
        clean = torch.from_numpy(np.stack([p[1] for p in pairs])[:, None].astype(np.float32))
        return rainy / 255.0, clean / 255.0


def default_data_root() -> Path:
    """``$SIFTRAIN_SHARED_DATA`` or ``../shared/data`` beside the checkout (as the tests use)."""
    import os

    env = os.environ.get("SIFTRAIN_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def validation_pairs(root: Path, numbers: range = range(81, 85)
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rainy, clean) uint8 Rain100H validation pairs used to pick the best checkpoint."""
    base = root / "rain100h"
    return [(read_gray(base / "rain" / f"norain-{n}.png"),
             read_gray(base / "norain" / f"norain-{n}.png")) for n in numbers]
