"""Ranges from which each rendered frame draws its rain, with light/medium/heavy/dense presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

Range = tuple[float, float]
Intensity = Literal["light", "medium", "heavy", "dense"]


@dataclass(frozen=True)
class RainParams:
    """Ranges ``(low, high)`` of the rain model; every frame draws one value uniformly from each.

    Set ``low == high`` to fix a value. Defaults are the ``"medium"`` preset.

    Attributes:
        density: streaks per 1000 pixels, all depth layers together (0 renders no streaks).
        length_px: streak length of the nearest layer, in pixels; farther layers are shorter.
        width_px: full width at half maximum of the nearest layer's streaks, in pixels.
        angle_deg: streak angle from vertical, in degrees; positive tilts the top of a streak
            to the right (``/``).
        brightness: peak intensity of the nearest layer's streaks, in 0..1 of the image range.
        blur: Gaussian defocus sigma of the nearest layer, in pixels; farther layers are sharper.
        layers: number of depth layers (integers, inclusive).
        transmission: veiling transmission ``t`` in (0, 1]; 1 means no haze.
        airlight: veiling (haze) intensity in 0..1 of the image range.
    """

    density: Range = (1.5, 3.0)
    length_px: Range = (15.0, 40.0)
    width_px: Range = (1.0, 2.0)
    angle_deg: Range = (-15.0, 15.0)
    brightness: Range = (0.25, 0.5)
    blur: Range = (0.3, 1.2)
    layers: tuple[int, int] = (2, 3)
    transmission: Range = (0.75, 0.95)
    airlight: Range = (0.7, 0.95)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, tuple) and len(value) == 2):
                raise ValueError(f"RainParams.{f.name} must be a (low, high) pair, got {value!r}")
            low, high = value
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"RainParams.{f.name} must be finite with low <= high, "
                                 f"got {value!r}")
        checks = {
            "density": self.density[0] >= 0,
            "length_px": self.length_px[0] >= 1,
            "width_px": self.width_px[0] > 0,
            "angle_deg": -90 < self.angle_deg[0] and self.angle_deg[1] < 90,
            "brightness": 0 <= self.brightness[0] and self.brightness[1] <= 1,
            "blur": self.blur[0] >= 0,
            "layers": self.layers[0] >= 1 and all(isinstance(n, (int, np.integer))
                                                   for n in self.layers),
            "transmission": 0 < self.transmission[0] and self.transmission[1] <= 1,
            "airlight": 0 <= self.airlight[0] and self.airlight[1] <= 1,
        }
        rules = {
            "density": ">= 0", "length_px": ">= 1", "width_px": "> 0",
            "angle_deg": "inside (-90, 90)", "brightness": "inside [0, 1]", "blur": ">= 0",
            "layers": "integers >= 1", "transmission": "inside (0, 1]",
            "airlight": "inside [0, 1]",
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"RainParams.{name} must be {rules[name]}, "
                                 f"got {getattr(self, name)!r}")

    @classmethod
    def preset(cls, intensity: Intensity) -> RainParams:
        """Ranges for ``"light"``, ``"medium"``, ``"heavy"`` or ``"dense"`` rain.

        Heavy rain is denser, longer, wider, brighter, has more depth layers and a thicker veil
        (lower transmission), as in the heavy-rain model of Li et al. (CVPR 2019). Dense rain
        is the curtain that most real rain photographs show: about three times heavy rain's
        streaks, long and faint (a third of its brightness), over several depth layers, with
        a thin veil.
        """
        try:
            return _PRESETS[intensity]
        except KeyError:
            raise ValueError(f"unknown rain intensity {intensity!r}; expected one of "
                             f"{sorted(_PRESETS)}") from None


def draw(rng: np.random.Generator, bounds: Range) -> float:
    """One value uniform in ``bounds``; a fixed range still consumes a draw, so the stream of
    random numbers (and with it every later choice) does not depend on which ranges are fixed."""
    return float(rng.uniform(bounds[0], bounds[1]))


_PRESETS: dict[str, RainParams] = {
    "light": RainParams(
        density=(1.0, 2.0), length_px=(10.0, 25.0), width_px=(0.8, 1.4), angle_deg=(-10.0, 10.0),
        brightness=(0.2, 0.4), blur=(0.0, 0.8), layers=(2, 2), transmission=(0.9, 1.0),
        airlight=(0.7, 0.9),
    ),
    "medium": RainParams(),
    "heavy": RainParams(
        density=(3.0, 6.0), length_px=(25.0, 60.0), width_px=(1.2, 2.8), angle_deg=(-20.0, 20.0),
        brightness=(0.35, 0.7), blur=(0.5, 2.0), layers=(3, 4), transmission=(0.5, 0.8),
        airlight=(0.75, 1.0),
    ),
    # Added in training round 16: real rain photographs (real_rain_photos) mostly show many
    # faint streaks rather than heavy rain's few bright ones, and the shipped nets change
    # about half of them no more than a dry image (docs/recovery.md, "Round 16").
    "dense": RainParams(
        density=(8.0, 16.0), length_px=(20.0, 80.0), width_px=(0.8, 1.6),
        angle_deg=(-15.0, 15.0), brightness=(0.08, 0.25), blur=(0.3, 1.5), layers=(3, 4),
        transmission=(0.8, 1.0), airlight=(0.7, 0.95),
    ),
}

# Every preset name, in the order of the training rain mix (``siftrain train --rain-mix``).
INTENSITIES: tuple[Intensity, ...] = tuple(_PRESETS)  # type: ignore[assignment]
