"""SIFT end to end: image -> scale space -> detect (DoG) -> orient + describe (gradients).

``features_from_pyramids`` is the seam the deraining networks plug into: detection reads a DoG
pyramid, orientation and description read a gradient pyramid, and they need not come from the
same image.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..device import resolve_device
from .config import SiftConfig
from .descriptor import describe
from .detect import detect
from .features import Features
from .image import as_tensor, to_gray_float
from .keypoints import ScaleSpaceKeypoints
from .orientation import assign_orientations
from .sampling import as_flat
from .scale_space import GradientPyramid, ScaleSpace, build_scale_space, gradient_pyramid


def pack_features(keypoints: ScaleSpaceKeypoints, descriptors: torch.Tensor,
                  config: SiftConfig) -> Features:
    """Convert scale-space keypoints to input-image cv::KeyPoint conventions."""
    first = config.first_octave
    xy = keypoints.image_xy(first)
    size = keypoints.size_in_base(config.sigma, config.n_octave_layers) * (2.0 ** first)
    sub_scale = torch.round((keypoints.offset[:, 0] + 0.5) * 255).long()
    packed = ((keypoints.octave + first) & 255) | (keypoints.layer << 8) | (sub_scale << 16)
    return Features(
        xy=xy.cpu().numpy(), size=size.cpu().numpy(), angle=keypoints.angle.cpu().numpy(),
        response=keypoints.response.cpu().numpy(),
        octave=packed.cpu().numpy().astype(np.int64).astype(np.int32),
        descriptors=descriptors.cpu().numpy(),
    )


def remove_duplicates(keypoints: ScaleSpaceKeypoints) -> ScaleSpaceKeypoints:
    """Drop exact repeats (two extrema refined to one point), as OpenCV's removeDuplicated."""
    if len(keypoints) < 2:
        return keypoints
    key = torch.stack([keypoints.octave.double(), keypoints.layer.double(),
                       keypoints.row.double(), keypoints.col.double(),
                       keypoints.offset[:, 0].double(), keypoints.offset[:, 1].double(),
                       keypoints.offset[:, 2].double(), keypoints.angle.double()], dim=1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(keypoints), dtype=torch.long,
                       device=inverse.device)
    first.scatter_reduce_(0, inverse, torch.arange(len(keypoints), device=inverse.device),
                          reduce="amin")
    return keypoints.select(torch.sort(first).values)


def keep_strongest(keypoints: ScaleSpaceKeypoints, count: int) -> ScaleSpaceKeypoints:
    """The ``count`` keypoints with the largest response (all if ``count`` <= 0)."""
    if count <= 0 or len(keypoints) <= count:
        return keypoints
    top = torch.topk(keypoints.response, count).indices
    return keypoints.select(torch.sort(top).values)


class _StageClock:
    """Writes the milliseconds since the previous lap into ``timings_ms``; does nothing (and
    never synchronises the GPU) when no dict is given, so untimed calls pay nothing."""

    def __init__(self, timings_ms: dict[str, float] | None, device: torch.device):
        self.timings_ms = timings_ms
        self.device = device
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        if self.timings_ms is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.timings_ms[stage] = (now - self.last) * 1000.0
        self.last = now


def features_from_pyramids(dogs: list[torch.Tensor], gradients: GradientPyramid,
                           config: SiftConfig, timings_ms: dict[str, float] | None = None
                           ) -> Features:
    """SIFT features from a DoG pyramid (detection) and a gradient pyramid (description).

    Args:
        dogs: per-octave DoG stacks, (1, L+2, H_o, W_o), OpenCV SIFT units.
        gradients: per-octave gradient magnitude/orientation of Gaussian levels 1..L.
        config: SIFT parameters (must match the pyramids' construction).
        timings_ms: if given, receives milliseconds for ``detection``, ``orientation`` and
            ``description``.

    Returns:
        Features in input-image pixels.
    """
    clock = _StageClock(timings_ms, dogs[0].device)
    keypoints = detect(dogs, config)
    clock.lap("detection")
    return features_from_keypoints(keypoints, gradients, config, timings_ms)


def features_from_keypoints(keypoints: ScaleSpaceKeypoints, gradients: GradientPyramid,
                            config: SiftConfig, timings_ms: dict[str, float] | None = None
                            ) -> Features:
    """Orient and describe detected keypoints on a gradient pyramid.

    Args:
        keypoints: keypoints in the pyramid's coordinates (from :func:`detect`, possibly
            selected or merged from several DoG pyramids of the same image size).
        gradients: per-octave gradient magnitude/orientation of Gaussian levels 1..L.
        config: SIFT parameters (must match the pyramids' construction).
        timings_ms: if given, receives milliseconds for ``orientation`` and ``description``.

    Returns:
        Features in input-image pixels.
    """
    clock = _StageClock(timings_ms, gradients.magnitude[0].device)
    if len(keypoints) == 0:
        clock.lap("orientation")
        features = pack_features(keypoints, torch.zeros(0, 128, dtype=torch.uint8), config)
        clock.lap("description")
        return features
    flat = as_flat(gradients, config)
    keypoints = assign_orientations(keypoints, flat, config)
    keypoints = keep_strongest(remove_duplicates(keypoints), config.max_keypoints)
    clock.lap("orientation")
    features = pack_features(keypoints, describe(keypoints, flat, config), config)
    clock.lap("description")
    return features


class Sift:
    """SIFT on CPU or CUDA, matching OpenCV's ``SIFT_create()`` on clean images.

    Example:
        >>> sift = Sift(SiftConfig(max_keypoints=1000))
        >>> features = sift(cv2.imread("frame.png", cv2.IMREAD_GRAYSCALE))
    """

    def __init__(self, config: SiftConfig | None = None, device: str | torch.device = "cpu"):
        self.config = config or SiftConfig()
        self.device = resolve_device(device)

    def scale_space(self, gray: np.ndarray) -> ScaleSpace:
        """Validated image -> Gaussian and DoG pyramids."""
        with torch.inference_mode():
            return build_scale_space(as_tensor(to_gray_float(gray), self.device), self.config)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Features:
        """Detect and describe.

        Args:
            image: (H, W) or (H, W, 3|4) BGR(A) array, uint8/uint16/float (see ``to_gray_float``).

        Returns:
            Features in input-image pixels.
        """
        space = self.scale_space(image)
        return features_from_pyramids(space.dogs, gradient_pyramid(space, self.config),
                                      self.config)
