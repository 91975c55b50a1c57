"""Gathering gradient samples in square windows around keypoints, grouped by window radius."""

from __future__ import annotations

from collections.abc import Iterator

import torch

# Cap on samples gathered at once, to bound memory on large images with many keypoints.
MAX_SAMPLES_PER_CHUNK = 4_000_000


def window_offsets(radius: int, device: torch.device | str | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column offsets (S,) of a (2r+1)^2 window, rows slowest."""
    r = torch.arange(-radius, radius + 1, device=device)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return dy.reshape(-1), dx.reshape(-1)


def radius_groups(radius: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (radius, indices) for each distinct radius, split so that a chunk holds at most
    ``MAX_SAMPLES_PER_CHUNK`` samples. One group per radius keeps windows unpadded."""
    for value in torch.unique(radius).tolist():
        members = torch.nonzero(radius == value, as_tuple=True)[0]
        per_chunk = max(1, MAX_SAMPLES_PER_CHUNK // (2 * value + 1) ** 2)
        for start in range(0, members.numel(), per_chunk):
            yield int(value), members[start: start + per_chunk]


def gather_window(magnitude: torch.Tensor, orientation: torch.Tensor, level: torch.Tensor,
                  row: torch.Tensor, col: torch.Tensor, radius: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradient samples in a (2r+1)^2 window around each keypoint.

    Args:
        magnitude, orientation: (L, H, W) gradient images of one octave.
        level: (N,) index into L; row, col: (N,) window centres.
        radius: window radius in pixels.

    Returns:
        mag, ori: (N, S) samples, mag zero outside the image's interior (where OpenCV takes no
        sample); dy, dx: (S,) offsets of the samples.
    """
    _, h, w = magnitude.shape
    dy, dx = window_offsets(radius, magnitude.device)
    ys = row[:, None] + dy
    xs = col[:, None] + dx
    inside = (ys > 0) & (ys < h - 1) & (xs > 0) & (xs < w - 1)
    flat = (level[:, None] * h + ys.clamp(0, h - 1)) * w + xs.clamp(0, w - 1)
    mag = magnitude.reshape(-1)[flat] * inside
    ori = orientation.reshape(-1)[flat]
    return mag, ori, dy, dx
