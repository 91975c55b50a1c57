"""The feature front end: image -> gray, scale -> DPRNet/GGIRNet -> scale space -> SIFT."""

from .backend import BackendError, DerainBackend, DerainOutput, TorchBackend
from .factory import BACKENDS, PRECISIONS, make_backend
from .frontend import (
    DEFAULT_CORRECTION_STRENGTH,
    DEFAULT_KEYPOINT_RAIN_GATE,
    DEFAULT_LOCAL_RAIN_GATE,
    DEFAULT_RAIN_GATE,
    FeatureFrontEnd,
    FrontEndConfig,
    FrontEndResult,
)
from .weights import MissingWeightsError, load_derain_nets, weights_path

__all__ = [
    "BACKENDS",
    "DEFAULT_CORRECTION_STRENGTH",
    "DEFAULT_KEYPOINT_RAIN_GATE",
    "DEFAULT_LOCAL_RAIN_GATE",
    "DEFAULT_RAIN_GATE",
    "BackendError",
    "PRECISIONS",
    "make_backend",
    "DerainBackend",
    "DerainOutput",
    "FeatureFrontEnd",
    "FrontEndConfig",
    "FrontEndResult",
    "MissingWeightsError",
    "TorchBackend",
    "load_derain_nets",
    "weights_path",
]
