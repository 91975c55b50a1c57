"""Shared pieces of the losses: the training SIFT configuration and a masked L1."""

from __future__ import annotations

import torch

from ..sift import SiftConfig

# Training patches use OpenCV's sigma ladder and octave structure but skip the 2x upsampled
# octave -1: it quadruples the cost of every blur and autograd buffer, and octave 0 of the
# upsampled pyramid sees the same image content (the extra octave only re-samples the input
# bilinearly, so recovering the input's DoG at octave 0 and finer already constrains it).
TRAIN_SIFT = SiftConfig(upsample=False)


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
