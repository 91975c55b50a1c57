"""Training losses on the SIFT scale space: DPRNet (DoG pyramid + interest points), GGIRNet
(gradients of the Gaussian levels) and the pixel-L1 ablation."""

from .dog import DogPyramidLoss
from .extrema import extremum_margins, keypoint_mask
from .factory import LOSS_KINDS, LossTerms, make_loss
from .gradients import GaussianGradientLoss
from .interest_point import interest_point_loss
from .pixel import PixelL1Loss

__all__ = [
    "LOSS_KINDS",
    "DogPyramidLoss",
    "GaussianGradientLoss",
    "LossTerms",
    "PixelL1Loss",
    "extremum_margins",
    "interest_point_loss",
    "keypoint_mask",
    "make_loss",
]
