"""Fused CPU kernels (numba) for the two window stages: orientation and description.

The torch implementations gather every window sample into (N, S) tensors and scatter them back
into histograms: a dozen passes over millions of values, which on a 2-core CPU cost several
times OpenCV's whole SIFT. These kernels do what OpenCV's ``calcOrientationHist`` and
``calcSIFTDescriptor`` do (one loop per keypoint, each sample read once, float32 arithmetic in
OpenCV's order) over the same flat, zero-padded gradient buffers, in parallel over keypoints.

They serve CPU tensors without autograd; CUDA and training use the torch code, which the tests
hold equal to these.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
import torch

from .sampling import FlatGradients

_F32 = np.float32


@numba.njit(cache=True, nogil=True)
def _span(slope: float, intercept: float, low: float, high: float, radius: int
          ) -> tuple[int, int]:
    """Integer j in [-radius, radius], widened by one, where low < slope j + intercept < high."""
    if abs(slope) < 1e-12:
        return (-radius, radius) if low < intercept < high else (1, 0)
    a, b = (low - intercept) / slope, (high - intercept) / slope
    if a > b:
        a, b = b, a
    return max(-radius, int(math.floor(max(a, -radius - 1.0))) - 1), \
        min(radius, int(math.ceil(min(b, radius + 1.0))) + 1)


@numba.njit(parallel=True, cache=True, nogil=True)
def _descriptor_histograms(magnitude: np.ndarray, orientation: np.ndarray, centre: np.ndarray,
                           radius: np.ndarray, cos_t: np.ndarray, sin_t: np.ndarray,
                           angle: np.ndarray, row_stride: int, cells: int, ori_bins: int,
                           out: np.ndarray) -> None:
    pad_c, pad_o = cells + 2, ori_bins + 2
    half = _F32(cells / 2 - 0.5)
    upper = _F32(cells)
    exp_scale = _F32(-1.0 / (cells * cells * 0.5))
    bins_per_degree = _F32(ori_bins / 360.0)
    for k in numba.prange(centre.shape[0]):
        hist = np.zeros(pad_c * pad_c * pad_o, dtype=np.float32)
        ct, st, ori_k, r = cos_t[k], sin_t[k], angle[k], radius[k]
        for i in range(-r, r + 1):
            fi = _F32(i)
            row_start = centre[k] + i * row_stride
            # Only about half of the (2r+1)^2 window falls inside the rotated square: visit
            # the columns where both bins can be in range (widened by one; the exact float32
            # test below decides).
            j_lo, j_hi = _span(float(st), float(fi * ct + half), -1.0, float(upper), r)
            c_lo, c_hi = _span(float(ct), float(half - fi * st), -1.0, float(upper), r)
            for j in range(max(j_lo, c_lo), min(j_hi, c_hi) + 1):
                fj = _F32(j)
                c_rot = fj * ct - fi * st
                r_rot = fj * st + fi * ct
                rbin = r_rot + half
                cbin = c_rot + half
                if not (rbin > -1 and rbin < upper and cbin > -1 and cbin < upper):
                    continue
                mag = magnitude[row_start + j]
                # Zero outside the image interior (padding and the 1-px border), where OpenCV
                # takes no samples; "not >" also skips NaN from a broken network output.
                if not mag > 0:
                    continue
                mag *= _F32(math.exp((c_rot * c_rot + r_rot * r_rot) * exp_scale))
                obin = (orientation[row_start + j] - ori_k) * bins_per_degree
                r0 = math.floor(rbin)
                c0 = math.floor(cbin)
                o0 = math.floor(obin)
                rbin -= _F32(r0)
                cbin -= _F32(c0)
                obin -= _F32(o0)
                if o0 < 0:
                    o0 += ori_bins
                if o0 >= ori_bins:
                    o0 -= ori_bins
                if not 0 <= o0 < ori_bins:  # non-finite orientation: never write out of bounds
                    continue
                v_r1 = mag * rbin
                v_r0 = mag - v_r1
                v_rc11 = v_r1 * cbin
                v_rc10 = v_r1 - v_rc11
                v_rc01 = v_r0 * cbin
                v_rc00 = v_r0 - v_rc01
                v_rco111 = v_rc11 * obin
                v_rco101 = v_rc10 * obin
                v_rco011 = v_rc01 * obin
                v_rco001 = v_rc00 * obin
                idx = ((int(r0) + 1) * pad_c + int(c0) + 1) * pad_o + int(o0)
                hist[idx] += v_rc00 - v_rco001
                hist[idx + 1] += v_rco001
                hist[idx + pad_o] += v_rc01 - v_rco011
                hist[idx + pad_o + 1] += v_rco011
                hist[idx + pad_c * pad_o] += v_rc10 - v_rco101
                hist[idx + pad_c * pad_o + 1] += v_rco101
                hist[idx + (pad_c + 1) * pad_o] += v_rc11 - v_rco111
                hist[idx + (pad_c + 1) * pad_o + 1] += v_rco111
        # Orientation is circular: fold the two wrap-around bins back.
        for i in range(cells):
            for j in range(cells):
                idx = ((i + 1) * pad_c + j + 1) * pad_o
                hist[idx] += hist[idx + ori_bins]
                hist[idx + 1] += hist[idx + ori_bins + 1]
                for o in range(ori_bins):
                    out[k, (i * cells + j) * ori_bins + o] = hist[idx + o]


@numba.njit(parallel=True, cache=True, nogil=True)
def _orientation_histograms(magnitude: np.ndarray, orientation: np.ndarray, centre: np.ndarray,
                            radius: np.ndarray, exp_scale: np.ndarray, row_stride: int,
                            out: np.ndarray) -> None:
    n_bins = out.shape[1]
    bins_per_degree = _F32(n_bins / 360.0)
    for k in numba.prange(centre.shape[0]):
        r = radius[k]
        for i in range(-r, r + 1):
            row_start = centre[k] + i * row_stride
            for j in range(-r, r + 1):
                mag = magnitude[row_start + j]
                if not mag > 0:
                    continue
                weight = _F32(math.exp(_F32(i * i + j * j) * exp_scale[k]))
                b = int(np.rint(orientation[row_start + j] * bins_per_degree))
                if b >= n_bins:
                    b -= n_bins
                if not 0 <= b < n_bins:
                    continue
                out[k, b] += weight * mag


def orientation_histograms(flat: FlatGradients, centre: torch.Tensor, radius: torch.Tensor,
                           exp_scale: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Raw (unsmoothed) gradient-orientation histograms, OpenCV's ``calcOrientationHist`` loop.

    Args:
        flat: the image's flattened gradient pyramid, on the CPU.
        centre: (N,) int64 flat window centres (``flat.centres``).
        radius: (N,) int64 window radii in octave pixels, at most ``flat.pad``.
        exp_scale: (N,) float32 Gaussian weight exponent per squared pixel distance.
        n_bins: histogram bins over 360 degrees.

    Returns:
        (N, n_bins) float32 histograms of Gaussian-weighted gradient magnitude.
    """
    _check_windows_fit(flat, radius)
    out = np.zeros((centre.shape[0], n_bins), dtype=np.float32)
    with _threads_like_torch():
        _orientation_histograms(flat.magnitude.numpy(), flat.orientation.numpy(),
                                centre.numpy(), radius.numpy(), _f32(exp_scale),
                                flat.row_stride, out)
    return torch.from_numpy(out)


def descriptor_histograms(flat: FlatGradients, centre: torch.Tensor, radius: torch.Tensor,
                          cos_t: torch.Tensor, sin_t: torch.Tensor, angle: torch.Tensor,
                          cells: int, ori_bins: int) -> torch.Tensor:
    """Raw (unnormalised) SIFT descriptor histograms, OpenCV's ``calcSIFTDescriptor`` loop.

    Args:
        flat: the image's flattened gradient pyramid, on the CPU.
        centre: (N,) int64 flat window centres (``flat.centres``).
        radius: (N,) int64 window radii in octave pixels, at most ``flat.pad``.
        cos_t, sin_t: (N,) float32 cosine and sine of the window rotation divided by the
            cell width in octave pixels.
        angle: (N,) float32 window rotation in degrees (``360 - keypoint angle``).
        cells: d, spatial cells per side (4).
        ori_bins: orientation bins per cell (8).

    Returns:
        (N, d * d * ori_bins) float32 histograms, cells row-major, bins fastest.
    """
    _check_windows_fit(flat, radius)
    out = np.zeros((centre.shape[0], cells * cells * ori_bins), dtype=np.float32)
    with _threads_like_torch():
        _descriptor_histograms(
            flat.magnitude.numpy(), flat.orientation.numpy(), centre.numpy(),
            radius.numpy(), _f32(cos_t), _f32(sin_t), _f32(angle), flat.row_stride, cells,
            ori_bins, out)
    return torch.from_numpy(out)


def _check_windows_fit(flat: FlatGradients, radius: torch.Tensor) -> None:
    # The kernels read without bounds checks: the padding is what keeps windows in the buffer.
    if radius.numel() and int(radius.max()) > flat.pad:
        raise ValueError(f"window radius {int(radius.max())} exceeds the gradient buffers' "
                         f"padding {flat.pad}")


def _f32(values: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(values.numpy(), dtype=np.float32)


@contextmanager
def _threads_like_torch() -> Iterator[None]:
    """Run numba's parallel loops on as many threads as torch uses (the node's ``threads``).

    numba's OpenMP layer can share torch's OpenMP runtime, where setting numba's thread count
    sets torch's too; so numba gets torch's count and torch's is put back if it moved.
    """
    torch_threads = torch.get_num_threads()
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
    numba.set_num_threads(max(1, min(torch_threads, most)))
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
