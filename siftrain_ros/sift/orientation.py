"""Orientation assignment from gradient images: OpenCV's 36-bin histogram with smoothing.

Every histogram peak >= 0.8 of the maximum yields a keypoint, so one location can give several.
"""

from __future__ import annotations

import torch

from .config import SiftConfig
from .keypoints import ScaleSpaceKeypoints
from .sampling import (
    FlatGradients,
    as_flat,
    fused_kernels_apply,
    gather_window,
    radius_groups,
    window_offsets,
)
from .scale_space import GradientPyramid

N_BINS = 36
RADIUS_FACTOR = 3 * 1.5
SIGMA_FACTOR = 1.5
PEAK_RATIO = 0.8


def orientation_histograms(flat: FlatGradients, keypoints: ScaleSpaceKeypoints,
                           config: SiftConfig, fused: bool | None = None) -> torch.Tensor:
    """Smoothed 36-bin gradient-orientation histograms.

    Args:
        flat: the image's flattened gradient pyramid.
        keypoints: N keypoints (any octaves).
        fused: use the fused CPU kernel (:mod:`.cpu_kernels`); None: wherever it applies.

    Returns:
        (N, 36) histograms.
    """
    scale = keypoints.scale_in_octave(config.sigma, config.n_octave_layers)
    radius = torch.round(RADIUS_FACTOR * scale).long()
    exp_scale = -1.0 / (2.0 * (SIGMA_FACTOR * scale) ** 2)
    centre = flat.centres(keypoints.octave, keypoints.layer - 1, keypoints.row, keypoints.col)
    if fused if fused is not None else fused_kernels_apply(flat):
        from .cpu_kernels import orientation_histograms as fused_histograms

        return _smooth(fused_histograms(flat, centre, radius, exp_scale, N_BINS))
    hist = torch.zeros(len(keypoints), N_BINS, device=flat.magnitude.device)
    for r, m in radius_groups(radius):
        dy, dx = window_offsets(r, centre.device)
        mag, ori = gather_window(flat, centre[m], dy, dx)
        weight = torch.exp((dy * dy + dx * dx)[None, :] * exp_scale[m, None])
        bins = torch.round(ori * (N_BINS / 360.0)).long() % N_BINS
        part = torch.zeros(m.numel(), N_BINS, device=hist.device)
        hist[m] = part.scatter_add_(1, bins, weight * mag)
    return _smooth(hist)


def _smooth(hist: torch.Tensor) -> torch.Tensor:
    """[1 4 6 4 1]/16 circular smoothing, as OpenCV."""
    return ((hist.roll(2, 1) + hist.roll(-2, 1)) * (1 / 16)
            + (hist.roll(1, 1) + hist.roll(-1, 1)) * (4 / 16) + hist * (6 / 16))


def peak_angles(hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated peaks of circular histograms, as cv::KeyPoint angles.

    Args:
        hist: (N, B) histograms.

    Returns:
        owner: (M,) row of ``hist`` each peak belongs to; angle: (M,) degrees in [0, 360).
    """
    n = hist.shape[1]
    left, right = hist.roll(1, 1), hist.roll(-1, 1)
    threshold = hist.max(dim=1, keepdim=True).values * PEAK_RATIO
    owner, j = torch.nonzero((hist > left) & (hist > right) & (hist >= threshold), as_tuple=True)
    l_val, c_val, r_val = left[owner, j], hist[owner, j], right[owner, j]
    bin_pos = j.float() + 0.5 * (l_val - r_val) / (l_val - 2 * c_val + r_val)
    bin_pos = torch.where(bin_pos < 0, bin_pos + n, torch.where(bin_pos >= n, bin_pos - n, bin_pos))
    angle = 360.0 - (360.0 / n) * bin_pos
    angle = torch.where((angle - 360.0).abs() < torch.finfo(torch.float32).eps,
                        torch.zeros_like(angle), angle)
    return owner, angle


def assign_orientations(keypoints: ScaleSpaceKeypoints,
                        gradients: GradientPyramid | FlatGradients,
                        config: SiftConfig, fused: bool | None = None) -> ScaleSpaceKeypoints:
    """Give each keypoint its dominant orientation(s) from the gradient images.

    Args:
        keypoints: detected keypoints (angle ignored).
        gradients: gradient pyramid of the image to describe (batch of one), or its flat form.
        config: SIFT parameters.
        fused: use the fused CPU kernel (:mod:`.cpu_kernels`); None: wherever it applies.

    Returns:
        Keypoints with ``angle`` set; locations with several strong peaks appear several times.
    """
    if len(keypoints) == 0:
        return keypoints
    flat = as_flat(gradients, config)
    owner, angle = peak_angles(orientation_histograms(flat, keypoints, config, fused))
    oriented = keypoints.select(owner)
    oriented.angle = angle
    return oriented
