"""Gathering gradient samples in square windows around keypoints of any octave.

All octaves' gradient images are zero-padded and flattened into one buffer, so keypoints of
every octave are processed together and a window is one multiply-add of indices with no bounds
tests: the zero magnitude of the padding (and of the one-pixel image border, where OpenCV takes
no samples) makes out-of-image samples contribute nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .buffers import FRAME_BUFFERS
from .config import SiftConfig
from .scale_space import GradientPyramid, ScaleSpace, cpu_outside_autograd

# Cap on samples gathered at once, to bound memory on large images with many keypoints.
MAX_SAMPLES_PER_CHUNK = 4_000_000


@dataclass
class FlatGradients:
    """Gradient pyramid of one image as zero-padded flat buffers.

    Every octave is padded to the same row length, so a window's sample offsets
    (``dy * row_stride + dx``) are shared by keypoints of all octaves.

    Attributes:
        magnitude, orientation: (T,) all octaves' (levels, H_o + 2P, row_stride) images.
        origin: (O,) int64 flat index of pixel (level 0, row 0, col 0) of each octave.
        height, width: (O,) int64 unpadded octave sizes.
        level_stride: (O,) int64 flat stride of a level.
        row_stride: common flat stride of a row.
        pad: P, the largest window radius that can be gathered.
    """

    magnitude: torch.Tensor
    orientation: torch.Tensor
    origin: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor
    level_stride: torch.Tensor
    row_stride: int
    pad: int
    levels: int

    @classmethod
    def from_pyramid(cls, gradients: GradientPyramid, pad: int) -> FlatGradients:
        row_stride = gradients.magnitude[0].shape[-1] + 2 * pad
        mags, oris, origin, level_stride = [], [], [], []
        offset = 0
        for mag, ori in zip(gradients.magnitude, gradients.orientation, strict=True):
            _, levels, h, w = mag.shape
            padding = (pad, row_stride - w - pad, pad, pad)
            mags.append(F.pad(mag[0], padding).reshape(-1))
            oris.append(F.pad(ori[0], padding).reshape(-1))
            origin.append(offset + pad * row_stride + pad)
            level_stride.append((h + 2 * pad) * row_stride)
            offset += mags[-1].numel()
        device = mags[0].device

        def as_long(values: list[int]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.int64, device=device)

        return cls(
            magnitude=torch.cat(mags), orientation=torch.cat(oris), origin=as_long(origin),
            height=as_long([m.shape[-2] for m in gradients.magnitude]),
            width=as_long([m.shape[-1] for m in gradients.magnitude]),
            level_stride=as_long(level_stride), row_stride=row_stride, pad=pad,
            levels=gradients.magnitude[0].shape[1],
        )

    def _views(self, buffer: torch.Tensor) -> list[torch.Tensor]:
        views = []
        for origin, stride, h, w in zip(self.origin.tolist(), self.level_stride.tolist(),
                                        self.height.tolist(), self.width.tolist(), strict=True):
            start = origin - self.pad * self.row_stride - self.pad
            levels = self.levels
            block = buffer[start: start + levels * stride].view(levels, -1, self.row_stride)
            views.append(block[None, :, self.pad: self.pad + h, self.pad: self.pad + w])
        return views

    def magnitude_views(self) -> list[torch.Tensor]:
        """Per-octave (1, levels, H_o, W_o) views of the magnitude buffer."""
        return self._views(self.magnitude)

    def orientation_views(self) -> list[torch.Tensor]:
        """Per-octave (1, levels, H_o, W_o) views of the orientation buffer."""
        return self._views(self.orientation)

    def centres(self, octave: torch.Tensor, level: torch.Tensor, row: torch.Tensor,
                col: torch.Tensor) -> torch.Tensor:
        """(N,) flat index of each keypoint's window centre."""
        return (self.origin[octave] + level * self.level_stride[octave]
                + row * self.row_stride + col)


def max_window_radius(config: SiftConfig) -> int:
    """Largest window (descriptor or orientation) any keypoint can need, in octave pixels."""
    # Refined keypoints have layer + xi < n_octave_layers + 0.5.
    scale = config.sigma * 2.0 ** ((config.n_octave_layers + 0.5) / config.n_octave_layers)
    return int(math.ceil(max(3.0 * scale * math.sqrt(2) * 2.5, 4.5 * scale))) + 1


def as_flat(gradients: GradientPyramid | FlatGradients, config: SiftConfig) -> FlatGradients:
    """The flat form, built once per image and shared by orientation and description."""
    if isinstance(gradients, FlatGradients):
        return gradients
    if gradients.flat is not None and gradients.flat.pad >= max_window_radius(config):
        return gradients.flat
    return FlatGradients.from_pyramid(gradients, max_window_radius(config))


def fused_kernels_apply(flat: FlatGradients) -> bool:
    """Whether the fused numba kernels (:mod:`.cpu_kernels`) can serve ``flat``: CPU buffers
    outside autograd. The torch gathers serve the rest (CUDA, training)."""
    return cpu_outside_autograd(flat.magnitude, flat.orientation)


def flat_gradients_opencv(space: ScaleSpace, config: SiftConfig) -> FlatGradients:
    """Gradients of Gaussian levels 1..n_octave_layers computed by OpenCV on CPU, written
    directly into zero-padded flat buffers (no intermediate pyramid, no padding copy).

    Same values as ``image_gradients`` + magnitude/orientation, with OpenCV's ``fastAtan2``.
    """
    pad = max_window_radius(config)
    levels = config.n_octave_layers
    row_stride = space.gaussians[0].shape[-1] + 2 * pad
    sizes = [g.shape[-2:] for g in space.gaussians]
    level_stride = [(h + 2 * pad) * row_stride for h, _ in sizes]
    total = sum(levels * stride for stride in level_stride)
    # Reused across frames (:mod:`.buffers`): fresh 40 MB buffers page-fault their way in at
    # a cost comparable to the gradients. The padding is zeroed once, at allocation, and never
    # written: a reused buffer of this layout still has it.
    layout = f"{row_stride}/{pad}/{'x'.join(f'{h}:{w}' for h, w in sizes)}"
    mag_np, _ = FRAME_BUFFERS.get(f"gradient_magnitude/{layout}", (total,), zero=True)
    ori_np, _ = FRAME_BUFFERS.get(f"gradient_orientation/{layout}", (total,), zero=True)
    magnitude, orientation = torch.from_numpy(mag_np), torch.from_numpy(ori_np)
    origin, offset, bands = [], 0, []
    threads = max(1, torch.get_num_threads())
    for gaussian, (h, w), stride in zip(space.gaussians, sizes, level_stride, strict=True):
        origin.append(offset + pad * row_stride + pad)
        for level in range(levels):
            image = gaussian[0, level + 1].contiguous().numpy()
            start = offset + level * stride
            rows, cols = slice(pad, pad + h), slice(pad, pad + w)
            mag_view = mag_np[start: start + stride].reshape(-1, row_stride)[rows, cols]
            ori_view = ori_np[start: start + stride].reshape(-1, row_stride)[rows, cols]
            # Interior rows only (the 1-px border stays zero, where OpenCV takes no samples),
            # in one band per thread so that large levels split evenly.
            edges = np.linspace(1, max(h - 1, 1), threads + 1).astype(int)
            bands += [(image, mag_view, ori_view, int(a), int(b))
                      for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
        offset += levels * stride
    if threads == 1:
        for band in bands:
            _gradient_band(*band)
    else:
        # numpy and OpenCV release the GIL: threads give real parallelism here.
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda band: _gradient_band(*band), bands))
    as_long = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return FlatGradients(
        magnitude=magnitude, orientation=orientation, origin=as_long(origin),
        height=as_long([h for h, _ in sizes]), width=as_long([w for _, w in sizes]),
        level_stride=as_long(level_stride), row_stride=row_stride, pad=pad, levels=levels,
    )


def _gradient_band(image: np.ndarray, magnitude: np.ndarray, orientation: np.ndarray,
                   first: int, stop: int) -> None:
    """Gradient magnitude and orientation (degrees) of rows ``first..stop-1`` of ``image``,
    columns 1..W-2, written into the same rows and columns of the output views.

    Central differences with y up (OpenCV SIFT's dx, dy), as numpy slices: twice as fast as a
    ksize-1 ``cv2.Sobel``; ``cartToPolar`` uses OpenCV SIFT's ``fastAtan2``.
    """
    if image.shape[1] < 3:
        return
    dx = np.subtract(image[first:stop, 2:], image[first:stop, :-2])
    dy = np.subtract(image[first - 1: stop - 1, 1:-1], image[first + 1: stop + 1, 1:-1])
    cv2.cartToPolar(dx, dy, magnitude=magnitude[first:stop, 1:-1],
                    angle=orientation[first:stop, 1:-1], angleInDegrees=True)


def window_offsets(radius: int, device: torch.device | str | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column offsets (S,) of a (2r+1)^2 window, rows slowest."""
    r = torch.arange(-radius, radius + 1, device=device)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return dy.reshape(-1), dx.reshape(-1)


def radius_groups(radius: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (radius, member indices) per distinct radius, chunked to at most
    ``MAX_SAMPLES_PER_CHUNK`` samples so memory stays bounded."""
    for value in torch.unique(radius).tolist():
        members = torch.nonzero(radius == value, as_tuple=True)[0]
        per_chunk = max(1, MAX_SAMPLES_PER_CHUNK // (2 * value + 1) ** 2)
        for start in range(0, members.numel(), per_chunk):
            yield int(value), members[start: start + per_chunk]


def gather_window(flat: FlatGradients, centre: torch.Tensor, dy: torch.Tensor,
                  dx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient samples at offsets (dy, dx) around each window centre.

    Args:
        flat: flattened gradient pyramid, padded by at least max(|dy|, |dx|).
        centre: (N,) flat centre indices from ``flat.centres``.
        dy, dx: (S,) sample offsets in pixels.

    Returns:
        mag, ori: (N, S) samples; mag is zero outside the image interior.
    """
    # index_select is several times faster than advanced indexing on CPU.
    index = (centre[:, None] + (dy * flat.row_stride + dx)).view(-1)
    shape = (centre.shape[0], dy.shape[0])
    return (flat.magnitude.index_select(0, index).view(shape),
            flat.orientation.index_select(0, index).view(shape))
