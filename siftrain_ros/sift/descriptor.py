"""The 128-D SIFT descriptor from gradient images (OpenCV's ``calcSIFTDescriptor``, vectorised).

4x4 spatial cells x 8 orientation bins, trilinear interpolation, Gaussian window, clip at 0.2,
renormalise and scale to 0..255 as OpenCV does, so values fit uint8 losslessly.
"""

from __future__ import annotations

import math

import torch

from .config import SiftConfig
from .keypoints import ScaleSpaceKeypoints
from .sampling import FlatGradients, gather_window, max_window_radius, radius_groups
from .scale_space import GradientPyramid

CELLS = 4
ORI_BINS = 8
SCALE_FACTOR = 3.0
MAG_THRESHOLD = 0.2
INT_FACTOR = 512.0
_PAD_C, _PAD_O = CELLS + 2, ORI_BINS + 2
# Offsets of the 8 trilinear corners in the padded (row, col, ori) histogram.
_CORNERS = torch.tensor([dr * _PAD_C * _PAD_O + dc * _PAD_O + do
                         for dr in (0, 1) for dc in (0, 1) for do in (0, 1)])


def _raw_histograms(mag: torch.Tensor, ori: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
                    cos_t: torch.Tensor, sin_t: torch.Tensor, angle: torch.Tensor,
                    hist_width: torch.Tensor) -> torch.Tensor:
    """Trilinear-interpolated (N, 128) histograms of window samples (N, S)."""
    n = mag.shape[0]
    c_rot = dx * cos_t[:, None] - dy * sin_t[:, None]
    r_rot = dx * sin_t[:, None] + dy * cos_t[:, None]
    # rbin = r_rot + d/2 - 0.5 lies in (-1, d)  <=>  |r_rot| < (d + 1) / 2; same for columns.
    valid = (torch.maximum(r_rot.abs(), c_rot.abs()) < (CELLS + 1) / 2) & (mag > 0)
    owner, sample = torch.nonzero(valid, as_tuple=True)
    rbin = r_rot[owner, sample] + (CELLS / 2 - 0.5)
    cbin = c_rot[owner, sample] + (CELLS / 2 - 0.5)
    # The Gaussian weight depends only on the distance, so it needs no rotation.
    dist2 = (dy * dy + dx * dx)[sample] / (hist_width[owner] ** 2)
    value = mag[owner, sample] * torch.exp(dist2 * (-1.0 / (CELLS * CELLS * 0.5)))
    obin = (ori[owner, sample] - angle[owner]) * (ORI_BINS / 360.0)
    r0, c0, o0 = torch.floor(rbin), torch.floor(cbin), torch.floor(obin)
    fr, fc, fo = rbin - r0, cbin - c0, obin - o0
    o0 = torch.remainder(o0.long(), ORI_BINS)
    base = ((r0.long() + 1) * _PAD_C + c0.long() + 1) * _PAD_O + o0
    v_r1 = value * fr
    wr = torch.stack([value - v_r1, v_r1], 1)
    wc = torch.stack([1 - fc, fc], 1)
    wo = torch.stack([1 - fo, fo], 1)
    corner_w = (wr[:, :, None, None] * wc[:, None, :, None] * wo[:, None, None, :]).reshape(-1, 8)
    hist_len = _PAD_C * _PAD_C * _PAD_O
    index = (owner * hist_len + base)[:, None] + _CORNERS.to(base.device)
    hist = torch.zeros(n * hist_len, device=mag.device, dtype=mag.dtype)
    hist.index_add_(0, index.reshape(-1), corner_w.reshape(-1))
    hist = hist.reshape(n, _PAD_C, _PAD_C, _PAD_O)
    # Orientation is circular: fold the two wrap-around bins back.
    hist[..., 0] += hist[..., ORI_BINS]
    hist[..., 1] += hist[..., ORI_BINS + 1]
    return hist[:, 1:-1, 1:-1, :ORI_BINS].reshape(n, -1)


def normalize_descriptors(raw: torch.Tensor) -> torch.Tensor:
    """Clip at 0.2 of the norm, renormalise, scale by 512 and saturate to uint8 (OpenCV)."""
    norm = raw.norm(dim=1, keepdim=True)
    clipped = torch.minimum(raw, norm * MAG_THRESHOLD)
    scale = INT_FACTOR / clipped.norm(dim=1, keepdim=True).clamp_min(torch.finfo(raw.dtype).eps)
    return torch.round(clipped * scale).clamp(0, 255).to(torch.uint8)


def describe(keypoints: ScaleSpaceKeypoints, gradients: GradientPyramid,
             config: SiftConfig) -> torch.Tensor:
    """SIFT descriptors of oriented keypoints from the gradient images.

    Args:
        keypoints: N keypoints with ``angle`` assigned.
        gradients: gradient pyramid of the image to describe (batch of one).
        config: SIFT parameters.

    Returns:
        (N, 128) uint8 descriptors, in the order of ``keypoints``.
    """
    device = keypoints.octave.device
    if len(keypoints) == 0:
        return torch.zeros(0, CELLS * CELLS * ORI_BINS, dtype=torch.uint8, device=device)
    flat = FlatGradients.from_pyramid(gradients, max_window_radius(config))
    scale = keypoints.scale_in_octave(config.sigma, config.n_octave_layers)
    hist_width = SCALE_FACTOR * scale
    radius = torch.round(hist_width * math.sqrt(2) * (CELLS + 1) * 0.5).long()
    diagonal = torch.hypot(flat.height.double(), flat.width.double()).long()
    radius = torch.minimum(torch.minimum(radius, diagonal[keypoints.octave]),
                           torch.tensor(flat.pad))
    angle = 360.0 - keypoints.angle
    angle = torch.where((angle - 360.0).abs() < torch.finfo(torch.float32).eps,
                        torch.zeros_like(angle), angle)
    rad = torch.deg2rad(angle)
    cos_t, sin_t = torch.cos(rad) / hist_width, torch.sin(rad) / hist_width
    # Window centre: the rounded sub-pixel position, as OpenCV.
    row = torch.round(keypoints.row + keypoints.offset[:, 1]).long()
    col = torch.round(keypoints.col + keypoints.offset[:, 2]).long()
    raw = torch.zeros(len(keypoints), CELLS * CELLS * ORI_BINS, device=device)
    for r, m in radius_groups(radius):
        mag, ori, dy, dx = gather_window(flat, keypoints.octave[m], keypoints.layer[m] - 1,
                                         row[m], col[m], r)
        raw[m] = _raw_histograms(mag, ori, dy.float(), dx.float(), cos_t[m], sin_t[m], angle[m],
                                 hist_width[m])
    return normalize_descriptors(raw)
