"""The 128-D SIFT descriptor from gradient images (OpenCV's ``calcSIFTDescriptor``, vectorised).

4x4 spatial cells x 8 orientation bins, trilinear interpolation, Gaussian window, clip at 0.2,
renormalise and scale to 0..255 as OpenCV does, so values fit uint8 losslessly.
"""

from __future__ import annotations

import math

import torch

from .config import SiftConfig
from .keypoints import ScaleSpaceKeypoints
from .sampling import gather_window, radius_groups
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
                    cos_t: torch.Tensor, sin_t: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Trilinear-interpolated (N, 128) histograms of window samples (N, S)."""
    n = mag.shape[0]
    c_rot = dx * cos_t[:, None] - dy * sin_t[:, None]
    r_rot = dx * sin_t[:, None] + dy * cos_t[:, None]
    rbin = r_rot + (CELLS / 2 - 0.5)
    cbin = c_rot + (CELLS / 2 - 0.5)
    valid = (rbin > -1) & (rbin < CELLS) & (cbin > -1) & (cbin < CELLS) & (mag > 0)
    owner, sample = torch.nonzero(valid, as_tuple=True)
    rbin, cbin = rbin[owner, sample], cbin[owner, sample]
    r_rot, c_rot = r_rot[owner, sample], c_rot[owner, sample]
    weight = torch.exp((c_rot * c_rot + r_rot * r_rot) * (-1.0 / (CELLS * CELLS * 0.5)))
    value = mag[owner, sample] * weight
    obin = (ori[owner, sample] - angle[owner]) * (ORI_BINS / 360.0)
    r0, c0, o0 = torch.floor(rbin), torch.floor(cbin), torch.floor(obin)
    fr, fc, fo = rbin - r0, cbin - c0, obin - o0
    o0 = torch.remainder(o0.long(), ORI_BINS)
    base = ((r0.long() + 1) * _PAD_C + c0.long() + 1) * _PAD_O + o0
    wr = torch.stack([1 - fr, fr], 1)
    wc = torch.stack([1 - fc, fc], 1)
    wo = torch.stack([1 - fo, fo], 1)
    corner_w = (value[:, None, None, None] * wr[:, :, None, None] * wc[:, None, :, None]
                * wo[:, None, None, :]).reshape(-1, 8)
    hist_len = _PAD_C * _PAD_C * _PAD_O
    index = (owner * hist_len)[:, None] + base[:, None] + _CORNERS.to(base.device)
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
    out = torch.zeros(len(keypoints), CELLS * CELLS * ORI_BINS, dtype=torch.uint8,
                      device=keypoints.octave.device)
    for octave in torch.unique(keypoints.octave).tolist():
        idx = torch.nonzero(keypoints.octave == octave, as_tuple=True)[0]
        mine = keypoints.select(idx)
        scale = mine.scale_in_octave(config.sigma, config.n_octave_layers)
        hist_width = SCALE_FACTOR * scale
        radius = torch.round(hist_width * math.sqrt(2) * (CELLS + 1) * 0.5).long()
        mag_img = gradients.magnitude[octave][0]
        radius = radius.clamp(max=int(math.hypot(mag_img.shape[-1], mag_img.shape[-2])))
        angle = 360.0 - mine.angle
        angle = torch.where((angle - 360.0).abs() < torch.finfo(torch.float32).eps,
                            torch.zeros_like(angle), angle)
        rad = torch.deg2rad(angle)
        cos_t, sin_t = torch.cos(rad) / hist_width, torch.sin(rad) / hist_width
        # Window centre: the rounded sub-pixel position, as OpenCV.
        row = torch.round(mine.row + mine.offset[:, 1]).long()
        col = torch.round(mine.col + mine.offset[:, 2]).long()
        raw = torch.zeros(len(mine), CELLS * CELLS * ORI_BINS, device=mag_img.device)
        for r, members in radius_groups(radius):
            mag, ori, dy, dx = gather_window(mag_img, gradients.orientation[octave][0],
                                             mine.layer[members] - 1, row[members],
                                             col[members], r)
            raw[members] = _raw_histograms(mag, ori, dy.float(), dx.float(), cos_t[members],
                                           sin_t[members], angle[members])
        out[idx] = normalize_descriptors(raw)
    return out
