"""The loss of each trainable model, by name."""

from __future__ import annotations

import torch
from torch import nn

from .common import training_sift
from .dog import DogPyramidLoss
from .gradients import GaussianGradientLoss
from .pixel import PixelL1Loss

LOSS_KINDS = ("dprnet", "ggirnet", "l1")
LossTerms = dict[str, torch.Tensor]


def make_loss(kind: str, recall_weight: float = 1.0, upsampled_octave: bool = False,
              keep_weight: float = 1.0) -> nn.Module:
    """The training loss of ``kind``: "dprnet" (:class:`DogPyramidLoss`), "ggirnet"
    (:class:`GaussianGradientLoss`) or "l1" (:class:`PixelL1Loss`, the ablation).

    Each maps ``(output, clean)`` (B, 1, H, W) 0..1 images to a dict of scalar terms with the
    optimised one under ``"total"``. ``recall_weight`` and ``keep_weight`` are DPRNet's
    interest point weightings (see :func:`interest_point_loss`; with ``keep_weight`` > 1 the
    dprnet loss also takes the input: ``(output, clean, rainy)``); the other losses have no
    keypoint mask, so anything but 1 is an error for them. ``upsampled_octave`` adds OpenCV's
    2x upsampled octave -1 to the dprnet and ggirnet pyramids (:func:`training_sift`); the
    pixel loss has none.
    """
    config = training_sift(upsampled_octave)
    if kind == "dprnet":
        return DogPyramidLoss(config, recall_weight=recall_weight, keep_weight=keep_weight)
    for name, value in (("recall_weight", recall_weight), ("keep_weight", keep_weight)):
        if value != 1.0:
            raise ValueError(f"{name} applies to the dprnet loss only, not {kind!r}")
    if kind == "ggirnet":
        return GaussianGradientLoss(config)
    if upsampled_octave and kind == "l1":
        raise ValueError("upsampled_octave applies to the scale-space losses, not 'l1'")
    if kind == "l1":
        return PixelL1Loss()
    raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {kind!r}")
