"""Shared pieces of the losses: the training SIFT configuration and a masked L1."""

from __future__ import annotations

import torch

from ..sift import SiftConfig

# Rounds 1-7 trained on OpenCV's sigma ladder and octave structure without the 2x upsampled
# octave -1, which quadruples the cost of every blur and autograd buffer. That octave is not
# redundant: its DoG spans sigma 0.8-1.6 input pixels, finer than anything octave 0 sees, and
# it holds about 70 % of the keypoints of a natural image (Rain100H 61..80: 11695 of 16740).
# ``training_sift(upsampled_octave=True)`` puts it back into the loss (round 8).
TRAIN_SIFT = SiftConfig(upsample=False)
TRAIN_SIFT_UPSAMPLED = SiftConfig(upsample=True)


def training_sift(upsampled_octave: bool = False) -> SiftConfig:
    """The loss pyramids' SIFT parameters: OpenCV's, with or without the upsampled octave -1."""
    return TRAIN_SIFT_UPSAMPLED if upsampled_octave else TRAIN_SIFT


def masked_l1(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None
              ) -> torch.Tensor:
    """Mean absolute difference, optionally weighted.

    Args:
        a, b: tensors of equal shape.
        weight: same shape (or broadcastable), >= 0; ``None`` weights all elements equally.

    Returns:
        Scalar ``sum(w |a - b|) / max(sum(w), 1)`` (plain mean when ``weight`` is None). The
        denominator floor keeps an almost empty mask from blowing the loss up.
    """
    diff = (a - b).abs()
    if weight is None:
        return diff.mean()
    weight = weight.expand_as(diff)
    return (weight * diff).sum() / weight.sum().clamp_min(1.0)
