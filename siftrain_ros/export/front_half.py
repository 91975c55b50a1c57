"""Experimental one-graph export: both networks plus the fixed dense front half of SIFT
(Gaussian pyramid, DoG, gradients of the Gaussian levels) in a single ONNX graph.

Why it is experimental and not the shipped path (measured in docs/backends.md): the number of
octaves, hence the number of outputs, depends on the frame size, and the reflect-101 padding of
small octaves is a size-dependent gather, so the graph is exported for one fixed frame size
(a camera has one, but every size and scale needs its own graph and engine); and on this 2-core
CPU it did not pay consistently against onnxruntime nets + the OpenCV/torch scale space. On a
GPU, fusing would save kernel launches and a pass over the network outputs; not measured.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..sift.config import SiftConfig
from ..sift.scale_space import (
    gaussian_blur_torch,  # the conv path, exportable; the public one picks OpenCV on CPU
    level_sigmas,
    octave_count,
)
from .onnx_export import INPUT_NAME, quiet_exporter

#: Operators the one-graph export adds to the networks' (measured with torch 2.13: atan2 becomes
#: Atan/Where/IsNaN/..., the upsampling Resize); TensorRT-RTX 1.7 parses and builds them all.
FRONT_HALF_EXTRA_OPS = frozenset({"Atan", "Clip", "Floor", "Greater", "IsNaN", "Less",
                                  "Resize", "Sqrt", "Where"})


def _gradients(gaussian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Same values as scale_space.image_gradients (zero border), written with a pad instead of
    # an in-place slice assignment, which would export as ScatterND.
    dx = nn.functional.pad(gaussian[..., 1:-1, 2:] - gaussian[..., 1:-1, :-2], (1, 1, 1, 1))
    dy = nn.functional.pad(gaussian[..., :-2, 1:-1] - gaussian[..., 2:, 1:-1], (1, 1, 1, 1))
    return dx, dy


class FrontHalf(nn.Module):
    """Networks + scale spaces: (1, 1, H, W) frame in 0..1 -> per-octave DoG and gradients.

    Outputs, in order: ``dog_o`` (1, L+2, H_o, W_o) of the detection image for each octave o,
    then ``magnitude_o`` and ``orientation_o`` (1, L, H_o, W_o; degrees, y up) of the
    description image, with the same values as ``build_scale_space`` + ``gradient_pyramid``.
    """

    def __init__(self, detect_net: nn.Module, describe_net: nn.Module, config: SiftConfig,
                 height: int, width: int):
        super().__init__()
        self.detect_net, self.describe_net, self.config = detect_net, describe_net, config
        factor = 2 if config.upsample else 1
        self.n_octaves = octave_count(height * factor, width * factor, config)

    def _gaussians(self, image: torch.Tensor) -> list[torch.Tensor]:
        config = self.config
        if config.upsample:
            image = nn.functional.interpolate(image, scale_factor=2.0, mode="bilinear",
                                              align_corners=False)
            present = 2 * config.init_sigma
        else:
            present = config.init_sigma
        sigmas = level_sigmas(config)
        current = gaussian_blur_torch(image, max(config.sigma**2 - present**2, 0.01) ** 0.5)
        octaves: list[torch.Tensor] = []
        for octave in range(self.n_octaves):
            if octave > 0:
                parent = octaves[-1][:, config.n_octave_layers: config.n_octave_layers + 1]
                h, w = parent.shape[-2] // 2, parent.shape[-1] // 2
                current = parent[..., : 2 * h: 2, : 2 * w: 2]
            levels = [current]
            for sigma in sigmas[1:]:
                levels.append(gaussian_blur_torch(levels[-1], sigma))
            octaves.append(torch.cat(levels, dim=1))
        return octaves

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        detect = self.detect_net(image).clamp(0, 1) * 255.0
        describe = self.describe_net(image).clamp(0, 1) * 255.0
        dogs = [g[:, 1:] - g[:, :-1] for g in self._gaussians(detect)]
        magnitudes, orientations = [], []
        layers = self.config.n_octave_layers
        for gaussian in self._gaussians(describe):
            dx, dy = _gradients(gaussian[:, 1: layers + 1])
            magnitudes.append(torch.sqrt(dx * dx + dy * dy))
            orientations.append(torch.remainder(torch.rad2deg(torch.atan2(dy, dx)), 360.0))
        return (*dogs, *magnitudes, *orientations)


def export_front_half(detect_net: nn.Module, describe_net: nn.Module, path: Path, *,
                      height: int, width: int, config: SiftConfig | None = None) -> FrontHalf:
    """Export :class:`FrontHalf` for (height, width) frames (static shape) to ``path``."""
    module = FrontHalf(detect_net.eval(), describe_net.eval(), config or SiftConfig(),
                       height, width).eval()
    names = ([f"dog_{o}" for o in range(module.n_octaves)]
             + [f"magnitude_{o}" for o in range(module.n_octaves)]
             + [f"orientation_{o}" for o in range(module.n_octaves)])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with quiet_exporter():
        torch.onnx.export(module, (torch.rand(1, 1, height, width),), str(path),
                          input_names=[INPUT_NAME], output_names=names, dynamo=True,
                          external_data=False, verbose=False)
    return module
