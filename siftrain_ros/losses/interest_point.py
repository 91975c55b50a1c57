"""The interest point loss: extremum strength of the recovered DoG pyramid vs the clean one,
where either has a keypoint candidate."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..sift import SiftConfig
from .common import masked_l1
from .extrema import extremum_margins, keypoint_mask


def prefilter_threshold(config: SiftConfig) -> float:
    """The detector's |DoG| prefilter in 0..255 units, ``floor(0.5 * c / L * 255)``, as OpenCV."""
    return float(math.floor(0.5 * config.contrast_threshold / config.n_octave_layers * 255))


def interest_point_loss(output_dogs: list[torch.Tensor], clean_dogs: list[torch.Tensor],
                        config: SiftConfig, dilate: int = 1,
                        recall_weight: float = 1.0,
                        input_dogs: list[torch.Tensor] | None = None,
                        keep_weight: float = 1.0) -> torch.Tensor:
    r"""Interest point loss over all octaves.

    For each octave with DoG stacks :math:`D^o` (output) and :math:`D^c` (clean), margins
    :math:`m_\max = D - \max_{26} D` and :math:`m_\min = \min_{26} D - D` (see
    :func:`extremum_margins`), and keypoint mask
    :math:`K = \max(r \, \mathrm{dilate}(\mathrm{kp}(D^c)), \mathrm{dilate}(\mathrm{kp}(D^o)))`
    (3x3x3 extrema above the prefilter threshold, dilated by ``dilate`` pixels in-plane so a
    keypoint that moved by a pixel is penalised at both places; :math:`r` is
    ``recall_weight``):

    .. math::
        L_{ip} = \mathrm{mean}_o \frac{\sum K (|m^o_\max - m^c_\max| + |m^o_\min - m^c_\min|
                 + |D^o - D^c|)}{\max(\sum K, 1)}

    The margin terms make the loss act on *extrema* (create missing ones, suppress false ones,
    keep their ranking), the value term on the contrast the detector thresholds. The mask is
    not differentiated.

    With :math:`r = 1` the mask is the plain union. Under heavy rain the output's candidates
    are mostly false (rain adds thousands of extrema), so the union is dominated by them and the
    loss mostly teaches suppression; :math:`r > 1` weights the clean image's extrema, the ones
    recall counts, :math:`r` times as much as the false ones.

    With ``input_dogs`` (the network *input's* pyramid) and :math:`k` = ``keep_weight`` > 1,
    the clean keypoints that the input already has (a candidate of :math:`D^c` with one of
    the input's within ``dilate`` pixels, same layer) get weight :math:`k`:
    :math:`K \leftarrow \max(K, k \, \mathrm{dilate}(\mathrm{kp}(D^c) \wedge
    \mathrm{dilate}(\mathrm{kp}(D^{in}))))`. Under heavy rain most clean keypoints are gone
    from the input and no net recovers them, while SIFT on the rainy input still finds real
    ones that the nets erase (docs/recovery.md, "Which clean keypoints each method
    recovers"); this weights the ones that are there to keep.

    Args:
        output_dogs, clean_dogs: per-octave (B, L, H_o, W_o) DoG stacks, 0..255 units.
        config: the SIFT parameters the pyramids were built with.
        dilate: in-plane dilation radius of the keypoint mask, pixels.
        recall_weight: r >= 1, the weight of the clean image's keypoint neighbourhoods.
        input_dogs: per-octave DoG stacks of the network input (same shapes), needed when
            ``keep_weight`` > 1.
        keep_weight: k >= 1, the weight of the clean keypoints the input already has.

    Returns:
        Scalar, in 0..255 DoG units.
    """
    if recall_weight < 1.0:
        raise ValueError(f"recall_weight must be >= 1, got {recall_weight}")
    if keep_weight < 1.0:
        raise ValueError(f"keep_weight must be >= 1, got {keep_weight}")
    if keep_weight > 1.0 and input_dogs is None:
        raise ValueError("keep_weight > 1 needs the input's DoG pyramid (input_dogs)")
    threshold = prefilter_threshold(config)
    inputs = input_dogs if keep_weight > 1.0 else [None] * len(clean_dogs)
    losses = []
    for out, ref, inp in zip(output_dogs, clean_dogs, inputs, strict=True):
        clean_kp = keypoint_mask(ref, threshold)
        mask = torch.maximum(recall_weight * _dilated(clean_kp, dilate),
                             _dilated(keypoint_mask(out, threshold), dilate))
        if inp is not None:
            kept = clean_kp & (_dilated(keypoint_mask(inp, threshold), dilate) > 0)
            mask = torch.maximum(mask, keep_weight * _dilated(kept, dilate))
        out_max, out_min = extremum_margins(out)
        ref_max, ref_min = extremum_margins(ref)
        losses.append(masked_l1(out_max, ref_max, mask) + masked_l1(out_min, ref_min, mask)
                      + masked_l1(out[:, 1:-1], ref[:, 1:-1], mask))
    return torch.stack(losses).mean()


def _dilated(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, L, H, W) bool -> float, each True grown to a (2 radius + 1)^2 square in-plane."""
    mask = mask.float()
    return F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius) if radius > 0 else mask
