"""SIFT scale space: base image, Gaussian pyramid, DoG pyramid and gradient images.

Everything here is differentiable and batched, so the training losses use the very same scale
space as the detector. Intensities are in OpenCV's SIFT units (0..255 for an 8-bit image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .buffers import FRAME_BUFFERS
from .config import SiftConfig

# Smallest octave side we build: below this no extremum survives the 5-pixel border.
MIN_OCTAVE_SIDE = 12


@dataclass
class ScaleSpace:
    """Per-octave pyramids of one batch of images.

    Attributes:
        gaussians: one tensor per octave, (B, n_octave_layers + 3, H_o, W_o).
        dogs: one tensor per octave, (B, n_octave_layers + 2, H_o, W_o).
        first_octave: octave index of ``gaussians[0]`` (-1 when the base was upsampled).
    """

    gaussians: list[torch.Tensor]
    dogs: list[torch.Tensor]
    first_octave: int


@dataclass
class GradientPyramid:
    """Gradients of the Gaussian levels used for orientation and description.

    Only levels 1..n_octave_layers are kept, the levels keypoints can live on.

    Attributes:
        magnitude: one tensor per octave, (B, n_octave_layers, H_o, W_o).
        orientation: one tensor per octave, (B, n_octave_layers, H_o, W_o), degrees in [0, 360),
            measured with y pointing up, as OpenCV's SIFT does.
    """

    magnitude: list[torch.Tensor]
    orientation: list[torch.Tensor]
    # The flat, padded buffers these tensors are views of, when built on CPU (FlatGradients).
    flat: Any = None


def gaussian_kernel1d(sigma: float, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """OpenCV's ``getGaussianKernel`` for float images: size ``round(8 sigma + 1) | 1``.

    Returns:
        (K,) kernel summing to one.
    """
    size = int(round(sigma * 8 + 1)) | 1
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def reflect101_indices(length: int, pad: int, device: torch.device | str | None = None
                       ) -> torch.Tensor:
    """Indices that pad a signal of ``length`` by ``pad`` with BORDER_REFLECT_101.

    Unlike ``F.pad(mode="reflect")`` this works for any pad, repeating the reflection as
    OpenCV's ``borderInterpolate`` does, so tiny octaves blur exactly as in OpenCV.
    """
    idx = torch.arange(-pad, length + pad, device=device)
    if length == 1:
        return torch.zeros_like(idx)
    period = 2 * (length - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= length, period - idx, idx)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with BORDER_REFLECT_101, as ``cv2.GaussianBlur(img, (0, 0), s)``.

    On CPU without autograd this calls OpenCV itself (same kernel, several times faster than a
    single-channel torch convolution); on CUDA, or when gradients are needed for training, it
    runs the same kernel as two torch convolutions.

    Args:
        image: (B, C, H, W) float tensor.
        sigma: standard deviation in pixels.

    Returns:
        (B, C, H, W) blurred tensor.
    """
    if cpu_outside_autograd(image):
        return _gaussian_blur_opencv(image, sigma)
    return gaussian_blur_torch(image, sigma)


def cpu_outside_autograd(*tensors: torch.Tensor) -> bool:
    """Whether the CPU fast paths (OpenCV, the fused numba kernels) may serve ``tensors``: all
    on the CPU and none being differentiated. Torch code serves the rest (CUDA, training)."""
    return all(t.device.type == "cpu" and not (torch.is_grad_enabled() and t.requires_grad)
               for t in tensors)


def _octave_opencv(first: torch.Tensor, sigmas: list[float]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One octave's Gaussian (B, L+3, H, W) and DoG (B, L+2, H, W) stacks, blurred by OpenCV
    straight into numpy buffers reused across frames (:mod:`.buffers`): fresh buffers of tens
    of MB page-fault their way in at a cost comparable to the blurs."""
    b, _, h, w = first.shape
    stack, _ = FRAME_BUFFERS.get("gaussians", (b, len(sigmas), h, w))
    dog, _ = FRAME_BUFFERS.get("dogs", (b, len(sigmas) - 1, h, w))
    stack[:, 0] = first[:, 0].detach().to(torch.float32).numpy()
    for image in stack:
        for i in range(1, len(sigmas)):
            cv2.GaussianBlur(image[i - 1], (0, 0), sigmas[i], dst=image[i], sigmaY=sigmas[i],
                             borderType=cv2.BORDER_REFLECT_101)
    np.subtract(stack[:, 1:], stack[:, :-1], out=dog)
    return torch.from_numpy(stack).to(first.dtype), torch.from_numpy(dog).to(first.dtype)


def _gaussian_blur_opencv(image: torch.Tensor, sigma: float) -> torch.Tensor:
    planes = image.detach().to(torch.float32).reshape(-1, *image.shape[-2:]).numpy()
    out = np.empty_like(planes)
    for i, plane in enumerate(planes):
        cv2.GaussianBlur(plane, (0, 0), sigma, dst=out[i], sigmaY=sigma,
                         borderType=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out).reshape(image.shape).to(image.dtype)


def gaussian_blur_torch(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``gaussian_blur`` as two torch convolutions on any device (differentiable, exportable)."""
    b, c, h, w = image.shape
    kernel = gaussian_kernel1d(sigma, image.dtype, image.device)
    pad = kernel.numel() // 2
    x = image.reshape(b * c, 1, h, w)
    if pad < w:
        x = F.pad(x, (pad, pad, 0, 0), mode="reflect")
    else:
        x = x.index_select(3, reflect101_indices(w, pad, image.device))
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    if pad < h:
        x = F.pad(x, (0, 0, pad, pad), mode="reflect")
    else:
        x = x.index_select(2, reflect101_indices(h, pad, image.device))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(b, c, h, w)


def base_image(image: torch.Tensor, config: SiftConfig) -> torch.Tensor:
    """First level of the pyramid: optional 2x bilinear upsampling, then blur to ``sigma``.

    Args:
        image: (B, 1, H, W) float tensor, 0..255.

    Returns:
        (B, 1, 2H, 2W) or (B, 1, H, W) tensor blurred to ``config.sigma``.
    """
    if config.upsample:
        image = F.interpolate(image, scale_factor=2.0, mode="bilinear", align_corners=False)
        present = 2 * config.init_sigma
    else:
        present = config.init_sigma
    sig_diff = math.sqrt(max(config.sigma**2 - present**2, 0.01))
    return gaussian_blur(image, sig_diff)


def level_sigmas(config: SiftConfig) -> list[float]:
    """Incremental blurs between consecutive Gaussian levels of an octave (OpenCV's ``sig``)."""
    k = 2.0 ** (1.0 / config.n_octave_layers)
    sigmas = [config.sigma]
    for i in range(1, config.n_octave_layers + 3):
        previous = k ** (i - 1) * config.sigma
        sigmas.append(math.sqrt((previous * k) ** 2 - previous**2))
    return sigmas


def octave_count(height: int, width: int, config: SiftConfig) -> int:
    """OpenCV's number of octaves for a base image of this size, minus octaves too small to
    hold any keypoint."""
    side = min(height, width)
    n = int(round(math.log2(side) - 2)) + 1 if side > 0 else 0
    usable = 0
    while usable < n and side >> usable >= MIN_OCTAVE_SIDE:
        usable += 1
    return max(usable, 1)


def build_scale_space(image: torch.Tensor, config: SiftConfig) -> ScaleSpace:
    """Gaussian and DoG pyramids of a batch of gray images.

    Args:
        image: (B, 1, H, W) float tensor, 0..255 (OpenCV SIFT units).
        config: SIFT parameters.

    Returns:
        The scale space; octave o has size ``ceil``-free 2x decimation of octave o-1.
    """
    base = base_image(image, config)
    sigmas = level_sigmas(config)
    n_levels = config.n_octave_layers + 3
    gaussians: list[torch.Tensor] = []
    dogs: list[torch.Tensor] = []
    current = base
    for octave in range(octave_count(base.shape[-2], base.shape[-1], config)):
        if octave > 0:
            # OpenCV decimates the level with twice the octave's base blur (INTER_NEAREST).
            parent = gaussians[-1][:, config.n_octave_layers: config.n_octave_layers + 1]
            h, w = parent.shape[-2] // 2, parent.shape[-1] // 2
            current = parent[..., : 2 * h: 2, : 2 * w: 2]
        if cpu_outside_autograd(current):
            stack, dog = _octave_opencv(current, sigmas)
        else:
            levels = [current]
            for i in range(1, n_levels):
                levels.append(gaussian_blur(levels[-1], sigmas[i]))
            stack = torch.cat(levels, dim=1)
            dog = stack[:, 1:] - stack[:, :-1]
        gaussians.append(stack)
        dogs.append(dog)
    return ScaleSpace(gaussians=gaussians, dogs=dogs, first_octave=config.first_octave)


def image_gradients(gaussian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central-difference gradients of Gaussian levels, in OpenCV SIFT's convention.

    ``dx = I(x+1) - I(x-1)``, ``dy = I(y-1) - I(y+1)`` (y up); zero on the one-pixel border,
    where OpenCV takes no samples.

    Args:
        gaussian: (B, L, H, W) Gaussian levels.

    Returns:
        dx, dy: (B, L, H, W) each.
    """
    dx = torch.zeros_like(gaussian)
    dy = torch.zeros_like(gaussian)
    dx[..., 1:-1, 1:-1] = gaussian[..., 1:-1, 2:] - gaussian[..., 1:-1, :-2]
    dy[..., 1:-1, 1:-1] = gaussian[..., :-2, 1:-1] - gaussian[..., 2:, 1:-1]
    return dx, dy


def gradient_pyramid(space: ScaleSpace, config: SiftConfig) -> GradientPyramid:
    """Magnitude and orientation (degrees) of levels 1..n_octave_layers of every octave.

    On CPU without autograd OpenCV computes them (``cartToPolar`` uses ``fastAtan2``, the very
    approximation OpenCV's SIFT uses) straight into the padded buffers the orientation and
    descriptor stages read; elsewhere torch computes them.
    """
    if space.gaussians[0].shape[0] == 1 and cpu_outside_autograd(space.gaussians[0]):
        from .sampling import flat_gradients_opencv  # sampling builds on this module

        flat = flat_gradients_opencv(space, config)
        return GradientPyramid(magnitude=flat.magnitude_views(),
                               orientation=flat.orientation_views(), flat=flat)
    magnitudes, orientations = [], []
    for gaussian in space.gaussians:
        dx, dy = image_gradients(gaussian[:, 1: config.n_octave_layers + 1])
        magnitudes.append(torch.hypot(dx, dy))
        orientations.append(torch.remainder(torch.rad2deg(torch.atan2(dy, dx)), 360.0))
    return GradientPyramid(magnitude=magnitudes, orientation=orientations)
