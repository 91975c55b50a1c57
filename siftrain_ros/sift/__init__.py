"""SIFT whose detector reads a DoG pyramid and whose descriptor reads gradient images."""

from .config import SiftConfig
from .detect import detect
from .features import Features
from .image import InvalidImageError, read_gray
from .keypoints import ScaleSpaceKeypoints
from .pipeline import Sift, features_from_keypoints, features_from_pyramids
from .scale_space import GradientPyramid, ScaleSpace, build_scale_space, gradient_pyramid

__all__ = [
    "Features",
    "GradientPyramid",
    "InvalidImageError",
    "ScaleSpace",
    "ScaleSpaceKeypoints",
    "Sift",
    "SiftConfig",
    "build_scale_space",
    "detect",
    "features_from_keypoints",
    "features_from_pyramids",
    "gradient_pyramid",
    "read_gray",
]
