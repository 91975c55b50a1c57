"""Flip self-ensemble: the networks' output averaged over the frame and its mirror image."""

from __future__ import annotations

import torch

from .backend import DerainBackend, DerainOutput


def flip_ensemble(backend: DerainBackend, image: torch.Tensor) -> DerainOutput:
    """Run ``backend`` on a frame and on its left-right mirror image, and average.

    A net's mistakes on a rain streak differ between a frame and its mirror image, while the
    scene's structure is the same in both, so the mean keeps the structure and halves some of
    the noise. Costs a second pass through both networks.

    Args:
        backend: the networks.
        image: (1, 1, H, W) frame in 0..1.

    Returns:
        ``DerainOutput`` whose ``detect`` and ``describe`` are (1, 1, H, W) means of the two
        passes (the mirrored pass mirrored back); ``describe`` is ``detect`` itself where the
        backend returns one image for both.
    """
    direct = backend(image)
    mirrored = backend(image.flip(-1))
    detect = 0.5 * (direct.detect + mirrored.detect.flip(-1))
    if direct.describe is direct.detect:
        return DerainOutput(detect=detect, describe=detect)
    describe = 0.5 * (direct.describe + mirrored.describe.flip(-1))
    return DerainOutput(detect=detect, describe=describe)
