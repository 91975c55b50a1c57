"""DPRNet's loss: the true SIFT DoG pyramid, its extrema, and a small pixel anchor."""

from __future__ import annotations

import torch
from torch import nn

from ..sift import SiftConfig, build_scale_space
from .common import TRAIN_SIFT
from .interest_point import interest_point_loss


class DogPyramidLoss(nn.Module):
    r"""DPRNet loss on OpenCV's scale space (all octaves, sigma 1.6, 3 layers per octave).

    .. math::
        L = w_{dog} \, \mathrm{mean}_o |D^o_{out} - D^o_{clean}|
          + w_{ip} \, L_{ip}(D_{out}, D_{clean})
          + w_{pix} \, 255 \, |y - x_{clean}|

    everything in 0..255 DoG/intensity units (images enter as 0..1 and are scaled by 255, the
    units the detector thresholds in). :math:`L_{ip}` is :func:`interest_point_loss`.

    Args:
        config: SIFT parameters of the pyramid (default: OpenCV's, without the upsampled octave;
            see ``TRAIN_SIFT``).
        dog_weight, ip_weight, pixel_weight: term weights. The pixel term is small: it only
            anchors the low frequencies the DoG cannot see (the DoG of a constant offset is 0).
        recall_weight: weight of the clean keypoints in :math:`L_{ip}` relative to the
            output's (see :func:`interest_point_loss`); 1 treats both alike.
        keep_weight: weight of the clean keypoints that the network input already has (see
            :func:`interest_point_loss`); > 1 needs ``rainy`` in :meth:`forward`.
    """

    def __init__(self, config: SiftConfig = TRAIN_SIFT, dog_weight: float = 1.0,
                 ip_weight: float = 1.0, pixel_weight: float = 0.05,
                 recall_weight: float = 1.0, keep_weight: float = 1.0):
        super().__init__()
        if recall_weight < 1.0:
            raise ValueError(f"recall_weight must be >= 1, got {recall_weight}")
        if keep_weight < 1.0:
            raise ValueError(f"keep_weight must be >= 1, got {keep_weight}")
        self.config = config
        self.dog_weight, self.ip_weight, self.pixel_weight = dog_weight, ip_weight, pixel_weight
        self.recall_weight, self.keep_weight = recall_weight, keep_weight

    def forward(self, output: torch.Tensor, clean: torch.Tensor,
                rainy: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Args:
            output: (B, 1, H, W) network output, intensity 0..1.
            clean: (B, 1, H, W) clean target, intensity 0..1.
            rainy: (B, 1, H, W) network input, intensity 0..1; used (and required) only
                with ``keep_weight`` > 1.

        Returns:
            ``{"dog", "ip", "pixel", "total"}`` scalars (0..255 units).
        """
        out_space = build_scale_space(output * 255.0, self.config)
        with torch.no_grad():
            ref_space = build_scale_space(clean * 255.0, self.config)
            input_dogs = None
            if self.keep_weight > 1.0:
                if rainy is None:
                    raise ValueError("keep_weight > 1 needs the network input (rainy)")
                input_dogs = build_scale_space(rainy * 255.0, self.config).dogs
        dog = torch.stack([(a - b).abs().mean() for a, b in
                           zip(out_space.dogs, ref_space.dogs, strict=True)]).mean()
        ip = interest_point_loss(out_space.dogs, ref_space.dogs, self.config,
                                 recall_weight=self.recall_weight, input_dogs=input_dogs,
                                 keep_weight=self.keep_weight)
        pixel = (output - clean).abs().mean() * 255.0
        total = self.dog_weight * dog + self.ip_weight * ip + self.pixel_weight * pixel
        return {"dog": dog, "ip": ip, "pixel": pixel, "total": total}
