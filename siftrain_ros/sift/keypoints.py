"""Keypoints in scale-space coordinates, as they move between detector and descriptor."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class ScaleSpaceKeypoints:
    """N keypoints located in the pyramid (one image).

    Attributes:
        octave: (N,) int64 pyramid octave index (0 = base image, which may be upsampled).
        layer: (N,) int64 Gaussian/DoG layer in 1..n_octave_layers.
        row, col: (N,) int64 integer position in the octave, after refinement.
        offset: (N, 3) float32 sub-scale, sub-row, sub-column offsets (xi, xr, xc), each |.| < 0.5.
        response: (N,) float32 |interpolated DoG contrast|, intensity in [0, 1].
        angle: (N,) float32 degrees in [0, 360), OpenCV cv::KeyPoint convention; NaN before
            orientation assignment.
    """

    octave: torch.Tensor
    layer: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    offset: torch.Tensor
    response: torch.Tensor
    angle: torch.Tensor

    def __len__(self) -> int:
        return int(self.octave.shape[0])

    def select(self, index: torch.Tensor) -> ScaleSpaceKeypoints:
        """Keypoints at ``index`` (a boolean mask or an index tensor)."""
        return ScaleSpaceKeypoints(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def cat(parts: list[ScaleSpaceKeypoints]) -> ScaleSpaceKeypoints:
        return ScaleSpaceKeypoints(
            **{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(parts[0])}
        )

    @staticmethod
    def empty(device: torch.device | str | None = None) -> ScaleSpaceKeypoints:
        i = torch.zeros(0, dtype=torch.int64, device=device)
        f = torch.zeros(0, dtype=torch.float32, device=device)
        return ScaleSpaceKeypoints(octave=i, layer=i, row=i, col=i,
                                   offset=torch.zeros(0, 3, device=device), response=f, angle=f)

    def image_xy(self, first_octave: int) -> torch.Tensor:
        """(N, 2) float32 (x, y) position in pixels of the image the pyramid was built from
        (its octave ``first_octave``; -1 when the base is OpenCV's 2x upsampled image)."""
        to_image = torch.exp2((self.octave + first_octave).to(torch.float32))
        return torch.stack([self.col + self.offset[:, 2],
                            self.row + self.offset[:, 1]], dim=1) * to_image[:, None]

    def scale_in_octave(self, sigma: float, n_octave_layers: int) -> torch.Tensor:
        """Blur of each keypoint in pixels of its octave: ``sigma * 2**((layer + xi) / S)``.

        Computed as OpenCV does (through the packed ``size``), so float rounding matches.
        """
        size = self.size_in_base(sigma, n_octave_layers)
        return size * 0.5 / torch.exp2(self.octave.to(torch.float32))

    def size_in_base(self, sigma: float, n_octave_layers: int) -> torch.Tensor:
        """cv::KeyPoint size (diameter) in pixels of the pyramid's base image."""
        exponent = (self.layer.to(torch.float32) + self.offset[:, 0]) / n_octave_layers
        return sigma * torch.exp2(exponent) * torch.exp2(self.octave.to(torch.float32)) * 2
