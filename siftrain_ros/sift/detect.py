"""SIFT detection on a DoG pyramid: 3x3x3 extrema, quadratic refinement, contrast and edge tests.

Follows OpenCV's ``findScaleSpaceExtrema``/``adjustLocalExtrema``, vectorised over candidates.
The input is a DoG pyramid rather than an image, so a recovered (derained) pyramid plugs in.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from .config import SiftConfig
from .keypoints import ScaleSpaceKeypoints
from .scale_space import cpu_outside_autograd

IMAGE_BORDER = 5
MAX_INTERP_STEPS = 5
# Neighbour offsets (ds, dr, dc) of a 3x3x3 cube, ds slowest; index 13 is the centre.
_KERNEL3 = np.ones((3, 3), np.uint8)
_CUBE = torch.stack(torch.meshgrid(*(torch.arange(-1, 2),) * 3, indexing="ij"), -1).reshape(27, 3)


def extrema_mask(dog: torch.Tensor, threshold: float) -> torch.Tensor:
    """Candidate extrema of one octave's DoG stack.

    A candidate is >= (or <=) all 26 neighbours, above ``threshold`` in magnitude, on layers
    1..L-2 and at least ``IMAGE_BORDER`` pixels from the edge.

    Args:
        dog: (L, H, W) DoG levels of one octave, OpenCV SIFT units (0..255 scale).
        threshold: minimum |DoG| value.

    Returns:
        (L, H, W) boolean mask.
    """
    if dog.device.type == "cpu":
        return torch.from_numpy(_extrema_mask_opencv(dog.contiguous().numpy(), threshold))
    # Separable 3x3x3 max/min by shifted slices over the interior only.
    b = IMAGE_BORDER
    h, w = dog.shape[-2:]
    ring = dog[:, b - 1: h - b + 1, b - 1: w - b + 1]
    local_max = _max3(_max3(_max3(ring, 2), 1), 0)
    local_min = _min3(_min3(_min3(ring, 2), 1), 0)
    centre = dog[1:-1, b: h - b, b: w - b]
    mask = torch.zeros_like(dog, dtype=torch.bool)
    mask[1:-1, b: h - b, b: w - b] = (((centre > threshold) & (centre >= local_max))
                                      | ((centre < -threshold) & (centre <= local_min)))
    return mask


def _extrema_mask_opencv(dog: np.ndarray, threshold: float) -> np.ndarray:
    """CPU version of ``extrema_mask``: OpenCV's SIMD 3x3 dilate/erode per plane and numpy on
    whole contiguous planes, several times faster than strided torch slices."""
    spatial_max = np.empty_like(dog)
    spatial_min = np.empty_like(dog)
    for i, plane in enumerate(dog):
        cv2.dilate(plane, _KERNEL3, dst=spatial_max[i])
        cv2.erode(plane, _KERNEL3, dst=spatial_min[i])
    mask = np.zeros(dog.shape, dtype=bool)
    scratch = np.empty(dog.shape[1:], dog.dtype)
    for layer in range(1, dog.shape[0] - 1):
        centre = dog[layer]
        np.maximum(spatial_max[layer - 1], spatial_max[layer + 1], out=scratch)
        np.maximum(scratch, spatial_max[layer], out=scratch)
        maxima = (centre > threshold) & (centre >= scratch)
        np.minimum(spatial_min[layer - 1], spatial_min[layer + 1], out=scratch)
        np.minimum(scratch, spatial_min[layer], out=scratch)
        minima = (centre < -threshold) & (centre <= scratch)
        np.logical_or(maxima, minima, out=mask[layer])
    b = IMAGE_BORDER
    interior = np.zeros(dog.shape[1:], dtype=bool)
    interior[b:-b, b:-b] = True
    mask &= interior
    return mask


def _max3(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over a sliding window of 3 along ``dim`` (output 2 shorter)."""
    n = x.shape[dim]
    return torch.maximum(torch.maximum(x.narrow(dim, 0, n - 2), x.narrow(dim, 1, n - 2)),
                         x.narrow(dim, 2, n - 2))


def _min3(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Min over a sliding window of 3 along ``dim`` (output 2 shorter)."""
    n = x.shape[dim]
    return torch.minimum(torch.minimum(x.narrow(dim, 0, n - 2), x.narrow(dim, 1, n - 2)),
                         x.narrow(dim, 2, n - 2))


def _neighbourhoods(dog: torch.Tensor, layer: torch.Tensor, row: torch.Tensor,
                    col: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3, 3) DoG values around each (layer, row, col)."""
    _, h, w = dog.shape
    cube = _CUBE.to(dog.device)
    idx = (((layer[:, None] + cube[:, 0]) * h + row[:, None] + cube[:, 1]) * w
           + col[:, None] + cube[:, 2])
    return dog.reshape(-1)[idx].reshape(-1, 3, 3, 3)


def _derivatives(cube: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient (N, 3) and Hessian (N, 3, 3) in (x, y, s) order, intensities in [0, 1]."""
    img_scale = 1.0 / 255.0
    c = cube
    v2 = c[:, 1, 1, 1] * 2
    dx = (c[:, 1, 1, 2] - c[:, 1, 1, 0]) * (img_scale * 0.5)
    dy = (c[:, 1, 2, 1] - c[:, 1, 0, 1]) * (img_scale * 0.5)
    ds = (c[:, 2, 1, 1] - c[:, 0, 1, 1]) * (img_scale * 0.5)
    dxx = (c[:, 1, 1, 2] + c[:, 1, 1, 0] - v2) * img_scale
    dyy = (c[:, 1, 2, 1] + c[:, 1, 0, 1] - v2) * img_scale
    dss = (c[:, 2, 1, 1] + c[:, 0, 1, 1] - v2) * img_scale
    cross = img_scale * 0.25
    dxy = (c[:, 1, 2, 2] - c[:, 1, 2, 0] - c[:, 1, 0, 2] + c[:, 1, 0, 0]) * cross
    dxs = (c[:, 2, 1, 2] - c[:, 2, 1, 0] - c[:, 0, 1, 2] + c[:, 0, 1, 0]) * cross
    dys = (c[:, 2, 2, 1] - c[:, 2, 0, 1] - c[:, 0, 2, 1] + c[:, 0, 0, 1]) * cross
    grad = torch.stack([dx, dy, ds], dim=1)
    hess = torch.stack([dxx, dxy, dxs, dxy, dyy, dys, dxs, dys, dss], dim=1).reshape(-1, 3, 3)
    return grad, hess


def _solve3(hess: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched 3x3 solve; singular systems give zero, as OpenCV's ``Matx::solve`` does."""
    solution, info = torch.linalg.solve_ex(hess, rhs.unsqueeze(-1))
    solution = solution.squeeze(-1)
    ok = (info == 0) & torch.isfinite(solution).all(dim=1)
    return torch.where(ok[:, None], solution, torch.zeros_like(solution))


def refine_extrema(dog: torch.Tensor, octave: int, layer: torch.Tensor, row: torch.Tensor,
                   col: torch.Tensor, config: SiftConfig) -> ScaleSpaceKeypoints:
    """Quadratic sub-pixel/sub-scale refinement with OpenCV's acceptance tests.

    Args:
        dog: (L, H, W) DoG levels of one octave.
        octave: pyramid octave index of ``dog``.
        layer, row, col: (N,) int64 candidate positions.
        config: SIFT parameters.

    Returns:
        Accepted keypoints with their offsets and responses (angle NaN).
    """
    n_layers = config.n_octave_layers
    _, h, w = dog.shape
    active = torch.arange(layer.shape[0], device=dog.device)
    layer, row, col = layer.clone(), row.clone(), col.clone()
    converged = torch.zeros_like(layer, dtype=torch.bool)
    alive = torch.ones_like(converged)
    offset = torch.zeros(layer.shape[0], 3, device=dog.device)
    for _ in range(MAX_INTERP_STEPS):
        if active.numel() == 0:
            break
        grad, hess = _derivatives(_neighbourhoods(dog, layer[active], row[active], col[active]))
        x = -_solve3(hess, grad)  # (xc, xr, xi)
        small = (x.abs() < 0.5).all(dim=1)
        done = active[small]
        converged[done] = True
        offset[done] = x[small].flip(1)  # store as (xi, xr, xc)
        moving, step = active[~small], x[~small]
        huge = (step.abs() > float(2**31 - 1) / 3).any(dim=1)
        alive[moving[huge]] = False
        moving, step = moving[~huge], step[~huge]
        col[moving] += torch.round(step[:, 0]).long()
        row[moving] += torch.round(step[:, 1]).long()
        layer[moving] += torch.round(step[:, 2]).long()
        inside = ((layer[moving] >= 1) & (layer[moving] <= n_layers)
                  & (col[moving] >= IMAGE_BORDER) & (col[moving] < w - IMAGE_BORDER)
                  & (row[moving] >= IMAGE_BORDER) & (row[moving] < h - IMAGE_BORDER))
        alive[moving[~inside]] = False
        active = moving[inside]

    keep = converged & alive
    layer, row, col, offset = layer[keep], row[keep], col[keep], offset[keep]
    cube = _neighbourhoods(dog, layer, row, col)
    grad, hess = _derivatives(cube)
    t = (grad * offset.flip(1)).sum(dim=1)
    contrast = cube[:, 1, 1, 1] / 255.0 + t * 0.5
    trace = hess[:, 0, 0] + hess[:, 1, 1]
    det = hess[:, 0, 0] * hess[:, 1, 1] - hess[:, 0, 1] ** 2
    edge = config.edge_threshold
    accept = ((contrast.abs() * n_layers >= config.contrast_threshold)
              & (det > 0) & (trace * trace * edge < (edge + 1) ** 2 * det))
    n = int(accept.sum())
    return ScaleSpaceKeypoints(
        octave=torch.full((n,), octave, dtype=torch.int64, device=dog.device),
        layer=layer[accept], row=row[accept], col=col[accept], offset=offset[accept],
        response=contrast[accept].abs().float(),
        angle=torch.full((n,), math.nan, device=dog.device),
    )


def detect(dogs: list[torch.Tensor], config: SiftConfig, *, fused: bool | None = None
           ) -> ScaleSpaceKeypoints:
    """Detect SIFT keypoints in a DoG pyramid.

    Args:
        dogs: one (L, H, W) tensor per octave (L = n_octave_layers + 2), OpenCV SIFT units;
            a (1, L, H, W) batch of one is accepted too.
        config: SIFT parameters.
        fused: use the fused CPU kernel (``cpu_detect``) instead of ``extrema_mask`` +
            ``refine_extrema``; None uses it for float32 CPU tensors without autograd, where
            it gives the same keypoints several times faster. True needs float32 CPU tensors.

    Returns:
        Keypoints in scale-space coordinates, angle not yet assigned.
    """
    threshold = math.floor(0.5 * config.contrast_threshold / config.n_octave_layers * 255)
    found = []
    for octave, dog in enumerate(dogs):
        dog = dog[0] if dog.dim() == 4 else dog
        if dog.shape[-1] <= 2 * IMAGE_BORDER or dog.shape[-2] <= 2 * IMAGE_BORDER:
            continue
        if _use_fused(dog, fused):
            keypoints = _detect_octave_cpu(dog, octave, threshold, config)
            if len(keypoints):
                found.append(keypoints)
            continue
        layer, row, col = torch.nonzero(extrema_mask(dog, threshold), as_tuple=True)
        if layer.numel():
            found.append(refine_extrema(dog, octave, layer, row, col, config))
    if not found:
        device = dogs[0].device if dogs else None
        return ScaleSpaceKeypoints.empty(device)
    return ScaleSpaceKeypoints.cat(found)


def _use_fused(dog: torch.Tensor, fused: bool | None) -> bool:
    if fused is not None:
        return fused
    return dog.dtype == torch.float32 and cpu_outside_autograd(dog)


def _detect_octave_cpu(dog: torch.Tensor, octave: int, threshold: float,
                       config: SiftConfig) -> ScaleSpaceKeypoints:
    # Imported here because cpu_detect builds on this module's constants, and so that CUDA and
    # training users never import numba.
    from .cpu_detect import detect_octave_cpu

    return detect_octave_cpu(dog, octave, threshold, config)
