"""SIFT parameters, with OpenCV's defaults and names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiftConfig:
    """Parameters of the scale space, detector and descriptor.

    Defaults are OpenCV's ``SIFT_create()`` defaults, so the same code reproduces OpenCV on a
    clean image.

    Attributes:
        n_octave_layers: layers per octave in which extrema are searched (OpenCV ``nOctaveLayers``).
        sigma: blur of the first level of each octave, in pixels of that octave.
        init_sigma: blur assumed already present in the input image, in input pixels.
        contrast_threshold: minimum |DoG| contrast (intensity in [0, 1]), divided by
            ``n_octave_layers`` as OpenCV does.
        edge_threshold: maximum ratio of principal curvatures of accepted extrema.
        upsample: start with a 2x bilinear upsampled base image (OpenCV's first octave -1).
        max_keypoints: keep the strongest keypoints by response; 0 keeps all.
    """

    n_octave_layers: int = 3
    sigma: float = 1.6
    init_sigma: float = 0.5
    contrast_threshold: float = 0.04
    edge_threshold: float = 10.0
    upsample: bool = True
    max_keypoints: int = 0

    def __post_init__(self) -> None:
        if self.n_octave_layers < 1:
            raise ValueError(f"n_octave_layers must be >= 1, got {self.n_octave_layers}")
        if not self.sigma > 0 or not self.init_sigma >= 0:
            raise ValueError(f"sigma must be > 0 and init_sigma >= 0, got {self.sigma}, "
                             f"{self.init_sigma}")
        if not self.contrast_threshold >= 0:
            raise ValueError(f"contrast_threshold must be >= 0, got {self.contrast_threshold}")
        if not self.edge_threshold > 0:
            raise ValueError(f"edge_threshold must be > 0, got {self.edge_threshold}")
        if self.max_keypoints < 0:
            raise ValueError(f"max_keypoints must be >= 0, got {self.max_keypoints}")

    @property
    def first_octave(self) -> int:
        """Octave index of the base image: -1 when upsampled, as OpenCV packs it."""
        return -1 if self.upsample else 0
