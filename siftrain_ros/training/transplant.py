"""Real rain on new backgrounds: a Rain100H rain layer moved onto another clean image.

The real Rain100H training pairs come with only 80 backgrounds, which the lite nets learn by
heart: on those pairs ours recovers more clean keypoints than SIFT on the rainy image, on the
validation pairs it does not (docs/recovery.md). Rain100H's rain is additive (the rainy image
is never darker than the clean one: its 10th percentile per clean intensity sits on the clean
value, measured on pairs 1, 5, 12, 30 and 77), so ``rainy - clean`` is the rain layer and can
be laid over any background. Where the source saturates, the layer is cut off by the source
background (``255 - clean``) and would carry that background's inverted structure along; those
pixels stay saturated instead. That still carries the *shape* of the source's bright regions
(on Rain100H 5, white polar bears, 17 % of the pixels), so only pairs with at most
:data:`MAX_SATURATED_SHARE` saturated pixels lend their rain (35 of the 80).
"""

from __future__ import annotations

import numpy as np

SATURATED = 254
MAX_SATURATED_SHARE = 0.05


def lends_rain(rainy: np.ndarray) -> bool:
    """Whether the (H, W) uint8 rainy image saturates little enough to lend its rain layer."""
    return float((rainy >= SATURATED).mean()) <= MAX_SATURATED_SHARE


def transplant_rain(rainy: np.ndarray, clean: np.ndarray, background: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lay the rain of the pair (``rainy``, ``clean``) over a window of ``background``.

    Args:
        rainy: (H, W) uint8 rainy image of an additive-rain pair.
        clean: (H, W) uint8 its clean image.
        background: (Hb, Wb) uint8 another clean image. Turned by 90 degrees when that fits
            the pair's orientation better (a rain-free background has no up).
        rng: the run's generator (window positions).

    Returns:
        (rainy, clean) (h, w) uint8, h = min(H, Hb'), w = min(W, Wb') for the (possibly
        turned) background: the background window with the pair's rain layer added, and the
        window itself.

    Raises:
        ValueError: ``rainy`` and ``clean`` differ in shape.
    """
    if rainy.shape != clean.shape:
        raise ValueError(f"rainy {rainy.shape} and clean {clean.shape} differ in shape")
    h, w = rainy.shape
    if (background.shape[0] >= background.shape[1]) != (h >= w):
        background = np.rot90(background)
    hh, ww = min(h, background.shape[0]), min(w, background.shape[1])
    y, x = int(rng.integers(0, h - hh + 1)), int(rng.integers(0, w - ww + 1))
    by = int(rng.integers(0, background.shape[0] - hh + 1))
    bx = int(rng.integers(0, background.shape[1] - ww + 1))
    source = rainy[y: y + hh, x: x + ww]
    layer = source.astype(np.int16) - clean[y: y + hh, x: x + ww]
    target = np.ascontiguousarray(background[by: by + hh, bx: bx + ww])
    moved = np.clip(target + np.maximum(layer, 0), 0, 255).astype(np.uint8)
    moved[source >= SATURATED] = 255
    return moved, target
