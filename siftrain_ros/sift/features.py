"""The feature container every stage hands on: numpy arrays in input-image pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DESCRIPTOR_SIZE = 128
FIELDS = ("xy", "size", "angle", "response", "octave", "descriptors")


@dataclass
class Features:
    """N SIFT keypoints with descriptors, in cv::KeyPoint conventions.

    Attributes:
        xy: (N, 2) float32 pixel position (x right, y down) in the input image.
        size: (N,) float32 keypoint diameter in input pixels.
        angle: (N,) float32 degrees in [0, 360).
        response: (N,) float32 |DoG contrast| (intensity in [0, 1]).
        octave: (N,) int32 OpenCV-packed octave (octave & 255 | layer << 8 | sub-scale << 16).
        descriptors: (N, 128) uint8, OpenCV scaling.
    """

    xy: np.ndarray
    size: np.ndarray
    angle: np.ndarray
    response: np.ndarray
    octave: np.ndarray
    descriptors: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.xy)
        self.xy = np.asarray(self.xy, dtype=np.float32).reshape(n, 2)
        for name in ("size", "angle", "response"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32).reshape(n))
        self.octave = np.asarray(self.octave, dtype=np.int32).reshape(n)
        self.descriptors = np.asarray(self.descriptors, dtype=np.uint8).reshape(n, DESCRIPTOR_SIZE)

    def __len__(self) -> int:
        return len(self.xy)

    @classmethod
    def empty(cls) -> Features:
        return cls(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0),
                   np.zeros((0, DESCRIPTOR_SIZE)))

    def select(self, index: np.ndarray) -> Features:
        """Subset by boolean mask or indices."""
        return Features(*(getattr(self, name)[index] for name in FIELDS))

    def pyramid_octave(self) -> np.ndarray:
        """(N,) int32 octave of each keypoint, unpacked from :attr:`octave` (-1: OpenCV's 2x
        upsampled base, 0: the input resolution, k: downsampled 2^k)."""
        return (self.octave & 255).astype(np.uint8).view(np.int8).astype(np.int32)

    def strongest(self, count: int) -> Features:
        """The ``count`` keypoints with the largest response (all if ``count`` <= 0)."""
        if count <= 0 or len(self) <= count:
            return self
        return self.select(np.sort(np.argsort(-self.response, kind="stable")[:count]))

    def to_cv_keypoints(self) -> list[cv2.KeyPoint]:
        """cv::KeyPoint list (class_id -1), in the same order as the arrays."""
        return [cv2.KeyPoint(float(x), float(y), float(s), float(a), float(r), int(o), -1)
                for (x, y), s, a, r, o in zip(self.xy, self.size, self.angle, self.response,
                                              self.octave, strict=True)]

    @classmethod
    def from_cv(cls, keypoints: list[cv2.KeyPoint], descriptors: np.ndarray | None) -> Features:
        """From OpenCV's ``detectAndCompute`` output (float descriptors are rounded to uint8)."""
        n = len(keypoints)
        if descriptors is None:
            descriptors = np.zeros((n, DESCRIPTOR_SIZE), np.uint8)
        return cls(
            xy=np.array([k.pt for k in keypoints], np.float32).reshape(n, 2),
            size=np.array([k.size for k in keypoints], np.float32),
            angle=np.array([k.angle for k in keypoints], np.float32),
            response=np.array([k.response for k in keypoints], np.float32),
            octave=np.array([k.octave for k in keypoints], np.int64).astype(np.int32),
            descriptors=np.clip(np.rint(descriptors), 0, 255).astype(np.uint8),
        )

    def save_npz(self, path: str | Path) -> None:
        """Write the six arrays to an ``.npz`` file."""
        np.savez(path, **{name: getattr(self, name) for name in FIELDS})

    @classmethod
    def load_npz(cls, path: str | Path) -> Features:
        with np.load(path) as data:
            return cls(*(data[name] for name in FIELDS))
