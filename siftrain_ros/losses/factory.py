"""The loss of each trainable model, by name."""

from __future__ import annotations

import torch
from torch import nn

from .dog import DogPyramidLoss
from .gradients import GaussianGradientLoss
from .pixel import PixelL1Loss

LOSS_KINDS = ("dprnet", "ggirnet", "l1")
LossTerms = dict[str, torch.Tensor]


def make_loss(kind: str) -> nn.Module:
    """The training loss of ``kind``: "dprnet" (:class:`DogPyramidLoss`), "ggirnet"
    (:class:`GaussianGradientLoss`) or "l1" (:class:`PixelL1Loss`, the ablation).

    Each maps ``(output, clean)`` (B, 1, H, W) 0..1 images to a dict of scalar terms with the
    optimised one under ``"total"``.
    """
    if kind == "dprnet":
        return DogPyramidLoss()
    if kind == "ggirnet":
        return GaussianGradientLoss()
    if kind == "l1":
        return PixelL1Loss()
    raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {kind!r}")
