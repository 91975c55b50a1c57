"""Pixel L1: the ablation's only loss, and a small anchor term of DPRNet's."""

from __future__ import annotations

import torch
from torch import nn


class PixelL1Loss(nn.Module):
    """``mean |output - clean|`` on 0..1 images (the "l1" ablation)."""

    def forward(self, output: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            output, clean: (B, 1, H, W) images, intensity 0..1.

        Returns:
            ``{"pixel": scalar, "total": scalar}``.
        """
        pixel = (output - clean).abs().mean()
        return {"pixel": pixel, "total": pixel}
