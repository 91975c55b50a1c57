"""Fused CPU kernel (numba) for SIFT detection: extrema scan and refinement in one pass.

The torch detector (``extrema_mask`` + ``refine_extrema``) works on whole planes: a 3x3x3
max/min of every pixel, then batched gathers and solves for the candidates, although only a
few pixels in a thousand are candidates. OpenCV's ``findScaleSpaceExtrema`` is several times
faster because it tests ``|value| > threshold`` first, compares with the 26 neighbours only
then, and refines each candidate in scalar code. This kernel does the same: per row, a
vectorised prefilter (threshold and the 6 face neighbours), the full 26-neighbour test on the
few pixels left, and the refinement of each candidate with the torch code's float32 arithmetic
in the torch code's order. Its keypoints are those of ``refine_extrema(dog, ...,
*torch.nonzero(extrema_mask(dog, threshold), as_tuple=True))``, in the same order.

It serves CPU float32 tensors without autograd; CUDA and training use the torch code, which the
tests hold equal to this.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from .config import SiftConfig
from .detect import IMAGE_BORDER, MAX_INTERP_STEPS
from .keypoints import ScaleSpaceKeypoints

_F32 = np.float32
_IMG_SCALE = 1.0 / 255.0
# Steps beyond this would overflow OpenCV's int position (its ``INT_MAX / 3`` check).
_HUGE_STEP = float(2**31 - 1) / 3


@numba.njit(cache=True, nogil=True)
def _is_extremum(dog: np.ndarray, layer: int, row: int, col: int, value: np.float32,
                 maximum: bool) -> bool:
    """``value`` >= (maximum) or <= (minimum) all 26 neighbours, as ``extrema_mask`` tests."""
    # Indexing the 3-D array directly: slicing out planes would create views, whose reference
    # counting costs more than the comparisons.
    for ds in range(-1, 2):
        for dr in range(-1, 2):
            for dc in range(-1, 2):
                other = dog[layer + ds, row + dr, col + dc]
                if maximum:
                    if not value >= other:
                        return False
                elif not value <= other:
                    return False
    return True


@numba.njit(cache=True, nogil=True)
def _prefilter_row(dog: np.ndarray, layer: int, row: int, threshold: np.float32,
                   flags: np.ndarray) -> None:
    """Flag the pixels of one row that pass the threshold and beat their 6 face neighbours.

    A necessary condition of ``_is_extremum``, computed without branches so that it
    vectorises: it discards all but a few in a thousand pixels at a fraction of a nanosecond
    each, where a per-pixel early-exit test costs a mispredicted branch.
    """
    # Slices indexed from 0: numba's negative-index wraparound on ``col - 1`` would stop LLVM
    # from vectorising the loop.
    n = dog.shape[2] - 2 * IMAGE_BORDER
    start = IMAGE_BORDER
    here = dog[layer, row, start: start + n]
    left = dog[layer, row, start - 1: start - 1 + n]
    right = dog[layer, row, start + 1: start + 1 + n]
    up = dog[layer, row - 1, start: start + n]
    down = dog[layer, row + 1, start: start + n]
    below = dog[layer - 1, row, start: start + n]
    above = dog[layer + 1, row, start: start + n]
    out = flags[start: start + n]
    low = -threshold
    for i in range(n):
        v = here[i]
        # max/min may pass over a NaN neighbour; _is_extremum's comparisons reject the pixel.
        high = max(max(max(left[i], right[i]), max(up[i], down[i])), max(below[i], above[i]))
        least = min(min(min(left[i], right[i]), min(up[i], down[i])), min(below[i], above[i]))
        out[i] = np.uint8((v > threshold) & (v >= high)) | np.uint8((v < low) & (v <= least))


@numba.njit(cache=True, nogil=True)
def _derivatives(dog: np.ndarray, layer: int, row: int, col: int, hess: np.ndarray,
                 grad: np.ndarray) -> None:
    """Fill ``hess`` (3, 3) and ``grad`` (3,) in (x, y, s) order, as ``detect._derivatives``.

    Every operand is float32 and the operations run in the torch code's order, so the values
    are bit-identical to it.
    """
    half = _F32(_IMG_SCALE * 0.5)
    scale = _F32(_IMG_SCALE)
    cross = _F32(_IMG_SCALE * 0.25)
    # Indexing the 3-D array directly, like _is_extremum; s, r, c name the neighbours.
    s0, s1, s2 = layer - 1, layer, layer + 1
    r0, r1, r2 = row - 1, row, row + 1
    c0, c1, c2 = col - 1, col, col + 1
    v2 = dog[s1, r1, c1] * _F32(2)
    grad[0] = (dog[s1, r1, c2] - dog[s1, r1, c0]) * half
    grad[1] = (dog[s1, r2, c1] - dog[s1, r0, c1]) * half
    grad[2] = (dog[s2, r1, c1] - dog[s0, r1, c1]) * half
    hess[0, 0] = (dog[s1, r1, c2] + dog[s1, r1, c0] - v2) * scale
    hess[1, 1] = (dog[s1, r2, c1] + dog[s1, r0, c1] - v2) * scale
    hess[2, 2] = (dog[s2, r1, c1] + dog[s0, r1, c1] - v2) * scale
    dxy = (dog[s1, r2, c2] - dog[s1, r2, c0] - dog[s1, r0, c2] + dog[s1, r0, c0]) * cross
    dxs = (dog[s2, r1, c2] - dog[s2, r1, c0] - dog[s0, r1, c2] + dog[s0, r1, c0]) * cross
    dys = (dog[s2, r2, c1] - dog[s2, r0, c1] - dog[s0, r2, c1] + dog[s0, r0, c1]) * cross
    hess[0, 1] = hess[1, 0] = dxy
    hess[0, 2] = hess[2, 0] = dxs
    hess[1, 2] = hess[2, 1] = dys


@numba.njit(cache=True, nogil=True)
def _solve3(a: np.ndarray, b: np.ndarray, lu: np.ndarray, y: np.ndarray, x: np.ndarray) -> None:
    """Solve ``a x = b`` in float32 as ``torch.linalg.solve_ex`` does on the CPU (MKL's
    getrf/getrs), or set ``x`` to zero when singular or not finite, as ``detect._solve3``.

    LU with partial pivoting; the operation order (reciprocal pivot for the first column,
    division for the second, dot products in the substitutions, reciprocal diagonal) is the
    one that reproduces the MKL of torch's wheels bit for bit, found by comparing the two on
    the refinement systems of real images. Another LAPACK may differ in the last bits.
    ``lu`` (3, 3) and ``y`` (3,) are scratch.
    """
    lu[:] = a
    y[:] = b
    for j in range(3):
        p = j
        for i in range(j + 1, 3):
            if abs(lu[i, j]) > abs(lu[p, j]):
                p = i
        if lu[p, j] == 0:
            x[:] = 0
            return
        if p != j:
            for k in range(3):
                lu[j, k], lu[p, k] = lu[p, k], lu[j, k]
            y[j], y[p] = y[p], y[j]
        if j == 0:
            inverse = _F32(1) / lu[0, 0]
            lu[1, 0] *= inverse
            lu[2, 0] *= inverse
        else:
            for i in range(j + 1, 3):
                lu[i, j] /= lu[j, j]
        for i in range(j + 1, 3):
            for k in range(j + 1, 3):
                lu[i, k] -= lu[i, j] * lu[j, k]
    y[1] -= lu[1, 0] * y[0]
    y[2] -= lu[2, 0] * y[0] + lu[2, 1] * y[1]
    x[2] = y[2] * (_F32(1) / lu[2, 2])
    x[1] = (y[1] - lu[1, 2] * x[2]) * (_F32(1) / lu[1, 1])
    x[0] = (y[0] - (lu[0, 1] * x[1] + lu[0, 2] * x[2])) * (_F32(1) / lu[0, 0])
    if not (np.isfinite(x[0]) and np.isfinite(x[1]) and np.isfinite(x[2])):
        x[:] = 0


@numba.njit(cache=True, nogil=True)
def _refine(dog: np.ndarray, layer: int, row: int, col: int, n_layers: int,
            limits: tuple[np.float32, np.float32, np.float32], hess: np.ndarray,
            grad: np.ndarray, lu: np.ndarray, y: np.ndarray, step: np.ndarray
            ) -> tuple[bool, int, int, int, np.float32]:
    """One candidate through ``refine_extrema``: Newton steps, then contrast and edge tests.

    Args:
        limits: float32 contrast threshold, edge threshold r and (r + 1)**2.
        hess, grad, lu, y, step: float32 scratch, (3, 3), (3,), (3, 3), (3,), (3,); the offset
            (xc, xr, xi) is left in ``step``.

    Returns:
        (accepted, layer, row, col, response).
    """
    _, h, w = dog.shape
    contrast_threshold, edge, edge_bound = limits
    huge = _F32(_HUGE_STEP)
    for _ in range(MAX_INTERP_STEPS):
        _derivatives(dog, layer, row, col, hess, grad)
        _solve3(hess, grad, lu, y, step)
        for i in range(3):
            step[i] = -step[i]
        if abs(step[0]) < 0.5 and abs(step[1]) < 0.5 and abs(step[2]) < 0.5:
            # ``hess`` and ``grad`` are still those at the converged position.
            t = grad[0] * step[0] + grad[1] * step[1] + grad[2] * step[2]
            contrast = dog[layer, row, col] / _F32(255) + t * _F32(0.5)
            trace = hess[0, 0] + hess[1, 1]
            det = hess[0, 0] * hess[1, 1] - hess[0, 1] * hess[0, 1]
            accepted = (abs(contrast) * _F32(n_layers) >= contrast_threshold and det > 0
                        and trace * trace * edge < edge_bound * det)
            return accepted, layer, row, col, abs(contrast)
        if abs(step[0]) > huge or abs(step[1]) > huge or abs(step[2]) > huge:
            break
        # round() on floats rounds half to even, as torch.round does.
        col += round(step[0])
        row += round(step[1])
        layer += round(step[2])
        if not (1 <= layer <= n_layers and IMAGE_BORDER <= col < w - IMAGE_BORDER
                and IMAGE_BORDER <= row < h - IMAGE_BORDER):
            break
    return False, layer, row, col, _F32(0)


@numba.njit(cache=True, nogil=True)
def _detect_octave(dog: np.ndarray, threshold: np.float32, n_layers: int,
                   contrast_threshold: np.float32, edge: np.float32, edge_bound: np.float32
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scan (layer, row, col) in ``torch.nonzero`` order and refine each candidate at once.

    Returns:
        (3, N) int64 (layer, row, col), (N, 3) float32 offsets (xi, xr, xc) and (N,) float32
        responses of the N accepted keypoints, in candidate order.
    """
    n_planes, h, w = dog.shape
    position = np.empty((3, 256), np.int64)
    offset = np.empty((256, 3), np.float32)
    response = np.empty(256, np.float32)
    limits = (contrast_threshold, edge, edge_bound)
    hess, lu = np.empty((3, 3), np.float32), np.empty((3, 3), np.float32)
    grad, y, step = np.empty(3, np.float32), np.empty(3, np.float32), np.empty(3, np.float32)
    # Padded to whole 8-byte words so that _row_extrema can skip 8 pixels at once.
    flags = np.zeros(8 * ((w + 7) // 8), np.uint8)
    cols = np.empty(w, np.int64)
    count = 0
    for layer in range(1, n_planes - 1):
        for row in range(IMAGE_BORDER, h - IMAGE_BORDER):
            _prefilter_row(dog, layer, row, threshold, flags)
            for k in range(_row_extrema(dog, layer, row, threshold, flags, cols)):
                accepted, k_layer, k_row, k_col, k_response = _refine(
                    dog, layer, row, cols[k], n_layers, limits, hess, grad, lu, y, step)
                if not accepted:
                    continue
                if count == response.shape[0]:
                    position, offset, response = _grow(position, offset, response)
                position[0, count], position[1, count], position[2, count] = k_layer, k_row, k_col
                offset[count, 0], offset[count, 1], offset[count, 2] = step[2], step[1], step[0]
                response[count] = k_response
                count += 1
    return position[:, :count], offset[:count], response[:count]


@numba.njit(cache=True, nogil=True)
def _row_extrema(dog: np.ndarray, layer: int, row: int, threshold: np.float32,
                 flags: np.ndarray, cols: np.ndarray) -> int:
    """Write the columns of the row's extrema among the flagged pixels to ``cols``, ascending.

    Returns:
        How many were written.
    """
    # A byte-by-byte scan of every pixel would cost as much as the vectorised prefilter; few
    # 8-pixel words hold any flag.
    words = flags.view(np.uint64)
    n = 0
    for word in range(words.shape[0]):
        if words[word] == 0:
            continue
        for col in range(8 * word, 8 * word + 8):
            if flags[col] == 0:
                continue
            value = dog[layer, row, col]
            if ((value > threshold and _is_extremum(dog, layer, row, col, value, True))
                    or (value < -threshold and _is_extremum(dog, layer, row, col, value, False))):
                cols[n] = col
                n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _grow(position: np.ndarray, offset: np.ndarray, response: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three output buffers, twice as long, with their contents."""
    n = response.shape[0]
    longer_position = np.empty((3, 2 * n), np.int64)
    longer_offset = np.empty((2 * n, 3), np.float32)
    longer_response = np.empty(2 * n, np.float32)
    longer_position[:, :n] = position
    longer_offset[:n] = offset
    longer_response[:n] = response
    return longer_position, longer_offset, longer_response


def detect_octave_cpu(dog: torch.Tensor, octave: int, threshold: float,
                      config: SiftConfig) -> ScaleSpaceKeypoints:
    """Keypoints of one octave, equal to ``extrema_mask`` + ``refine_extrema`` on the CPU.

    Args:
        dog: (L, H, W) float32 CPU DoG levels of one octave (L = n_octave_layers + 2), OpenCV
            SIFT units (0..255 scale); gradients are not tracked.
        octave: pyramid octave index of ``dog``, copied into the keypoints.
        threshold: minimum |DoG| value of a candidate, same units as ``dog``.
        config: SIFT parameters (n_octave_layers, contrast and edge thresholds).

    Returns:
        Accepted keypoints in (layer, row, col) scan order with their offsets (xi, xr, xc) in
        octave pixels/layers and responses (|contrast|, intensity in [0, 1]); angle NaN.
    """
    if dog.device.type != "cpu" or dog.dtype != torch.float32 or dog.dim() != 3:
        raise ValueError(f"expected a (L, H, W) float32 CPU tensor, got {tuple(dog.shape)} "
                         f"{dog.dtype} on {dog.device}")
    edge = config.edge_threshold
    position, offset, response = _detect_octave(
        np.ascontiguousarray(dog.detach().numpy()), _F32(threshold), config.n_octave_layers,
        _F32(config.contrast_threshold), _F32(edge), _F32((edge + 1) ** 2))
    n = response.shape[0]
    # Copies: the kernel's outputs are views of its larger, growable buffers.
    layer, row, col = (torch.from_numpy(p.copy()) for p in position)
    return ScaleSpaceKeypoints(
        octave=torch.full((n,), octave, dtype=torch.int64), layer=layer, row=row, col=col,
        offset=torch.from_numpy(offset.copy()), response=torch.from_numpy(response.copy()),
        angle=torch.full((n,), math.nan),
    )
