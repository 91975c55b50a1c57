"""The per-keypoint rain gate: where the network found no rain, keypoints come from the frame.

The lite nets move or erase some of the keypoints of dry texture even where they change the
frame by only a gray level or two, and on light rain they recover little that SIFT on the frame
misses (docs/recovery.md, "Round 17"). So each keypoint is taken from the pyramid that should
be trusted where it lies: the frame's own DoG where DPRNet's local correction is weak, the
recovered DoG where the net took out rain. Orientation and description stay on GGIRNet's
gradients for all of them.
"""

from __future__ import annotations

import torch

from ..sift import ScaleSpaceKeypoints, SiftConfig
from ..sift.scale_space import gaussian_blur

# Fixed before any threshold was tried (docs/recovery.md): spreads a streak's correction over
# its few-pixel width and the support of the finest keypoints, as the per-pixel gate does.
MASK_SIGMA_PX = 3.0


def correction_map(frame: torch.Tensor, derained: torch.Tensor,
                   sigma: float = MASK_SIGMA_PX) -> torch.Tensor:
    r"""Local mean of the network's absolute correction.

    Args:
        frame: (1, 1, H, W) frame, gray levels 0..255.
        derained: (1, 1, H, W) DPRNet's output, gray levels 0..255.
        sigma: Gaussian window, pixels.

    Returns:
        (H, W) gray levels: :math:`G_\sigma * |y - x|`.
    """
    return gaussian_blur((derained - frame).abs(), sigma)[0, 0]


def merge_by_correction(frame_keypoints: ScaleSpaceKeypoints,
                        derained_keypoints: ScaleSpaceKeypoints, correction: torch.Tensor,
                        threshold: float, config: SiftConfig) -> ScaleSpaceKeypoints:
    """The frame's keypoints where the correction is below ``threshold``, the recovered image's
    where it is at or above it.

    Args:
        frame_keypoints: detected on the frame's DoG pyramid.
        derained_keypoints: detected on DPRNet's DoG pyramid (same image size and config).
        correction: (H, W) gray levels, from :func:`correction_map`.
        threshold: gray levels > 0.
        config: the SIFT parameters both pyramids were built with.

    Returns:
        One keypoint set, frame keypoints first, still without orientations.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 gray levels, got {threshold}")
    frame_dry = _correction_at(frame_keypoints, correction, config) < threshold
    derained_wet = _correction_at(derained_keypoints, correction, config) >= threshold
    return ScaleSpaceKeypoints.cat([frame_keypoints.select(frame_dry),
                                    derained_keypoints.select(derained_wet)])


def _correction_at(keypoints: ScaleSpaceKeypoints, correction: torch.Tensor,
                   config: SiftConfig) -> torch.Tensor:
    """(N,) correction at each keypoint's nearest pixel."""
    height, width = correction.shape
    xy = keypoints.image_xy(config.first_octave).round().long()
    x = xy[:, 0].clamp(0, width - 1)
    y = xy[:, 1].clamp(0, height - 1)
    return correction[y, x]
