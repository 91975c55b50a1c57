"""The 128-D SIFT descriptor from gradient images (OpenCV's ``calcSIFTDescriptor``, vectorised).

4x4 spatial cells x 8 orientation bins, trilinear interpolation, Gaussian window, clip at 0.2,
renormalise and scale to 0..255 as OpenCV does, so values fit uint8 losslessly.
"""

from __future__ import annotations

import math

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

CELLS = 4
ORI_BINS = 8
SCALE_FACTOR = 3.0
MAG_THRESHOLD = 0.2
INT_FACTOR = 512.0
_PAD_C, _PAD_O = CELLS + 2, ORI_BINS + 2
# Offsets of the 8 trilinear corners in the padded (row, col, ori) histogram.
_CORNERS = torch.tensor([dr * _PAD_C * _PAD_O + dc * _PAD_O + do
                         for dr in (0, 1) for dc in (0, 1) for do in (0, 1)])


def _circle_offsets(radius: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets of OpenCV's (2r+1)^2 window that can fall inside the rotated 4x4-cell square.

    The square's half-diagonal, (d + 1) / 2 * sqrt(2) * hist_width, rounds to ``radius``, so
    samples beyond radius + 0.5 never count: dropping them (a fifth of the window) changes
    nothing but the work.
    """
    dy, dx = window_offsets(radius, device)
    keep = dy * dy + dx * dx <= (radius + 0.5) ** 2
    return dy[keep], dx[keep]


def _window_histograms(flat: FlatGradients, centre: torch.Tensor, radius: int,
                       cos_t: torch.Tensor, sin_t: torch.Tensor, angle: torch.Tensor,
                       hist_width: torch.Tensor) -> torch.Tensor:
    """Trilinear-interpolated (N, 128) histograms of the windows around N centres."""
    n = centre.shape[0]
    dy, dx = _circle_offsets(radius, centre.device)
    mag, ori = gather_window(flat, centre, dy, dx)
    s = dy.shape[0]
    offsets = torch.stack([dx, dy]).float()
    # Rotation into the keypoint frame as two (N, 2) @ (2, S) products: contiguous results.
    c_rot = torch.stack([cos_t, -sin_t], 1) @ offsets
    r_rot = torch.stack([sin_t, cos_t], 1) @ offsets
    # rbin = r_rot + d/2 - 0.5 lies in (-1, d)  <=>  |r_rot| < (d + 1) / 2; same for columns.
    inside = torch.maximum(r_rot.abs_(), c_rot.abs()) < (CELLS + 1) / 2
    flat_index = torch.nonzero((inside & (mag > 0)).view(-1)).squeeze(1)
    owner = torch.div(flat_index, s, rounding_mode="floor")
    sample = flat_index - owner * s
    def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return values.reshape(-1).index_select(0, index)

    # r_rot was made absolute in place above; recompute it for the kept samples only.
    dxs, dys = take(offsets[0], sample), take(offsets[1], sample)
    rbin = dxs * take(sin_t, owner) + dys * take(cos_t, owner) + (CELLS / 2 - 0.5)
    cbin = take(c_rot, flat_index) + (CELLS / 2 - 0.5)
    # The Gaussian weight depends only on the distance, so it needs no rotation.
    exponent = (dxs * dxs + dys * dys) * take(-1.0 / (CELLS * CELLS * 0.5) / hist_width ** 2,
                                              owner)
    value = take(mag, flat_index) * torch.exp(exponent)
    obin = (take(ori, flat_index) - take(angle, owner)) * (ORI_BINS / 360.0)
    r0, c0, o0 = torch.floor(rbin), torch.floor(cbin), torch.floor(obin)
    fr, fc, fo = rbin - r0, cbin - c0, obin - o0
    base = (owner * (_PAD_C * _PAD_C * _PAD_O) + ((r0.long() + 1) * _PAD_C + c0.long() + 1)
            * _PAD_O + torch.remainder(o0.long(), ORI_BINS))
    # OpenCV's update order: split the value along rows, then columns, then orientation.
    v_r1 = value * fr
    v_r0 = value - v_r1
    parts = []
    for v_r in (v_r0, v_r1):
        v_rc1 = v_r * fc
        for v_rc in (v_r - v_rc1, v_rc1):
            v_rco1 = v_rc * fo
            parts += [v_rc - v_rco1, v_rco1]
    index = base[None, :] + _CORNERS.to(base.device)[:, None]
    hist = torch.zeros(n * _PAD_C * _PAD_C * _PAD_O, device=mag.device, dtype=mag.dtype)
    hist.index_add_(0, index.view(-1), torch.cat(parts))
    hist = hist.view(n, _PAD_C, _PAD_C, _PAD_O)
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


def describe(keypoints: ScaleSpaceKeypoints, gradients: GradientPyramid | FlatGradients,
             config: SiftConfig, fused: bool | None = None) -> torch.Tensor:
    """SIFT descriptors of oriented keypoints from the gradient images.

    Args:
        keypoints: N keypoints with ``angle`` assigned.
        gradients: gradient pyramid of the image to describe (batch of one).
        config: SIFT parameters.
        fused: use the fused CPU kernel (:mod:`.cpu_kernels`); None: wherever it applies.

    Returns:
        (N, 128) uint8 descriptors, in the order of ``keypoints``.
    """
    device = keypoints.octave.device
    if len(keypoints) == 0:
        return torch.zeros(0, CELLS * CELLS * ORI_BINS, dtype=torch.uint8, device=device)
    flat = as_flat(gradients, config)
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
    centre = flat.centres(keypoints.octave, keypoints.layer - 1, row, col)
    if fused if fused is not None else fused_kernels_apply(flat):
        from .cpu_kernels import descriptor_histograms

        return normalize_descriptors(descriptor_histograms(
            flat, centre, radius, cos_t, sin_t, angle, CELLS, ORI_BINS))
    raw = torch.zeros(len(keypoints), CELLS * CELLS * ORI_BINS, device=device)
    for r, m in radius_groups(radius):
        raw[m] = _window_histograms(flat, centre[m], r, cos_t[m], sin_t[m], angle[m],
                                    hist_width[m])
    return normalize_descriptors(raw)
