"""GGIRNet's loss: gradients of every Gaussian level of every octave."""

from __future__ import annotations

import torch
from torch import nn

from ..sift import SiftConfig, build_scale_space
from ..sift.scale_space import image_gradients
from .common import TRAIN_SIFT


def gaussian_gradient_l1(output_gaussians: list[torch.Tensor],
                         clean_gaussians: list[torch.Tensor]) -> torch.Tensor:
    r"""``mean_o mean |dx^o_out - dx^o_clean| + |dy^o_out - dy^o_clean|`` over all levels.

    Gradients are SIFT's own central differences (:func:`image_gradients`, y up, zero border),
    i.e. exactly what orientation assignment and the descriptor histogram read; comparing
    (dx, dy) rather than (magnitude, angle) penalises both and has no angle wrap-around.

    Args:
        output_gaussians, clean_gaussians: per-octave (B, L + 3, H_o, W_o) Gaussian levels,
            0..255 units.

    Returns:
        Scalar, 0..255 units per pixel step.
    """
    losses = []
    for out, ref in zip(output_gaussians, clean_gaussians, strict=True):
        out_dx, out_dy = image_gradients(out)
        ref_dx, ref_dy = image_gradients(ref)
        losses.append((out_dx - ref_dx).abs().mean() + (out_dy - ref_dy).abs().mean())
    return torch.stack(losses).mean()


class GaussianGradientLoss(nn.Module):
    r"""GGIRNet loss: :math:`L = L_{grad} + w_{pix} \, 255 |y - x_{clean}|`.

    Args:
        config: SIFT parameters of the pyramid (default ``TRAIN_SIFT``).
        pixel_weight: small anchor for the image offset, which gradients do not see.
    """

    def __init__(self, config: SiftConfig = TRAIN_SIFT, pixel_weight: float = 0.05):
        super().__init__()
        self.config = config
        self.pixel_weight = pixel_weight

    def forward(self, output: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            output: (B, 1, H, W) network output, intensity 0..1.
            clean: (B, 1, H, W) clean target, intensity 0..1.

        Returns:
            ``{"gradient", "pixel", "total"}`` scalars (0..255 units).
        """
        out_space = build_scale_space(output * 255.0, self.config)
        with torch.no_grad():
            ref_space = build_scale_space(clean * 255.0, self.config)
        gradient = gaussian_gradient_l1(out_space.gaussians, ref_space.gaussians)
        pixel = (output - clean).abs().mean() * 255.0
        return {"gradient": gradient, "pixel": pixel,
                "total": gradient + self.pixel_weight * pixel}
