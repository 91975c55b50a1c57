"""Differentiable scale-space extremum strength: how far a DoG voxel stands above (maximum) or
below (minimum) its 26 neighbours in the 3x3x3 cube SIFT's detector tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _neighbour_max(dog: torch.Tensor) -> torch.Tensor:
    """Max over the 26 neighbours (centre excluded) of the interior layers.

    Args:
        dog: (B, L, H, W) DoG stack of one octave.

    Returns:
        (B, L - 2, H, W): for layer l in 1..L-2, the max of the 8 spatial neighbours on l and
        the 3x3 windows on l - 1 and l + 1. Out-of-image neighbours count as -inf, so border
        voxels are compared with what exists (the detector ignores them anyway).
    """
    h, w = dog.shape[-2:]
    padded = F.pad(dog, (1, 1, 1, 1), value=float("-inf"))
    ring = [padded[..., 1 + dr: 1 + dr + h, 1 + dc: 1 + dc + w]
            for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    same_layer = torch.stack(ring, 0).amax(0)
    window = F.max_pool2d(dog, 3, stride=1, padding=1)
    return torch.maximum(same_layer[:, 1:-1], torch.maximum(window[:, :-2], window[:, 2:]))


def extremum_margins(dog: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed extremum margins of every interior DoG voxel.

    ``max_margin = D - max_26(D)`` is >= 0 exactly where the voxel is a 3x3x3 maximum (the
    detector's ``>=`` test) and says by how much; ``min_margin = min_26(D) - D`` likewise for
    minima. The margins are not clipped at zero, so a missing extremum (negative margin where
    the clean image has a positive one) still receives a gradient that pushes it back up;
    ``max`` routes that gradient to the centre voxel and to the neighbour that beats it.

    Args:
        dog: (B, L, H, W) DoG stack of one octave, OpenCV SIFT units.

    Returns:
        max_margin, min_margin: (B, L - 2, H, W) each, for layers 1..L-2.
    """
    centre = dog[:, 1:-1]
    return centre - _neighbour_max(dog), -_neighbour_max(-dog) - centre


def keypoint_mask(dog: torch.Tensor, threshold: float) -> torch.Tensor:
    """Where SIFT's detector would start from: interior 3x3x3 extrema with ``|D| > threshold``.

    Args:
        dog: (B, L, H, W) DoG stack of one octave, OpenCV SIFT units.
        threshold: minimum |DoG| (the detector's prefilter, ``0.5 * contrast / layers * 255``).

    Returns:
        (B, L - 2, H, W) bool, no gradient.
    """
    with torch.no_grad():
        max_margin, min_margin = extremum_margins(dog)
        centre = dog[:, 1:-1]
        return (((max_margin >= 0) & (centre > threshold))
                | ((min_margin >= 0) & (centre < -threshold)))
