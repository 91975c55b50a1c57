"""The per-pixel rain gate: keep the frame's own detail where the network removed no streak."""

from __future__ import annotations

import torch

from ..sift.scale_space import gaussian_blur

# Fixed before the contrast was chosen (docs/recovery.md): the low-pass scale separates the
# veil/brightness correction (smooth, applied everywhere) from streak removal (fine), and the
# mask scale spreads a streak's correction over its few-pixel width.
LOWPASS_SIGMA_PX = 8.0
MASK_SIGMA_PX = 3.0


def keep_dry_detail(frame: torch.Tensor, recovered: torch.Tensor, contrast: float
                    ) -> torch.Tensor:
    r"""Blend a network's output into the frame where it removed streaks.

    With the correction :math:`r = y - x` split into :math:`r_{lp} = G_8 * r` and
    :math:`r_{hp} = r - r_{lp}`:

    .. math::
        x' = x + r_{lp} + m \, r_{hp}, \qquad
        m = \min(1, (G_3 * |r_{hp}|) / c)

    The smooth part (veil and brightness) is applied everywhere; the fine part only where it is
    locally strong, i.e. where the net took out a streak. Where the net merely smoothed dry
    texture, the weak fine correction is mostly dropped and the frame's keypoints survive.

    Args:
        frame: (B, 1, H, W) input frame, gray levels 0..255.
        recovered: (B, 1, H, W) the network's output, gray levels 0..255.
        contrast: c > 0, gray levels: local fine correction at which the net's output is
            taken in full.

    Returns:
        (B, 1, H, W) gray levels.
    """
    if not contrast > 0:
        raise ValueError(f"contrast must be > 0 gray levels, got {contrast}")
    correction = recovered - frame
    lowpass = gaussian_blur(correction, LOWPASS_SIGMA_PX)
    fine = correction - lowpass
    mask = (gaussian_blur(fine.abs(), MASK_SIGMA_PX) / contrast).clamp(max=1.0)
    return frame + lowpass + mask * fine
