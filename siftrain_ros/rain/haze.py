"""Heavy-rain image formation: streaks on the scene, seen through a veil of rain accumulation."""

from __future__ import annotations

import numpy as np


def composite(background: np.ndarray, streaks: np.ndarray, transmission: float,
              airlight: float) -> np.ndarray:
    """Observed rainy image ``t * (background + streaks) + (1 - t) * airlight``.

    Distant rain merges into a veil that scatters ambient light towards the camera (Li et al.,
    "Heavy Rain Image Restoration", CVPR 2019): it lowers contrast and lifts dark regions
    towards the airlight. ``t`` is one value per frame since the scene depth is unknown.

    Args:
        background: (H, W) or (H, W, C) float32 clean image in 0..1.
        streaks: (H, W) float32 streak layer in 0..1, shared by all channels (rain is neutral).
        transmission: veil transmission ``t`` in (0, 1]; 1 leaves no veil.
        airlight: veil intensity in 0..1.

    Returns:
        float32 image of ``background``'s shape, clipped to 0..1.
    """
    if background.ndim == 3:
        streaks = streaks[..., None]
    t = np.float32(transmission)
    observed = t * (background + streaks) + (np.float32(1.0) - t) * np.float32(airlight)
    return np.clip(observed, 0.0, 1.0, out=observed)
