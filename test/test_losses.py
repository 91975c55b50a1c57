"""Training losses: gradients reach the input, zero on identical images, and the interest point
loss reacts to extrema that move or vanish."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siftrain_ros.losses import (
    DogPyramidLoss,
    GaussianGradientLoss,
    PixelL1Loss,
    extremum_margins,
    interest_point_loss,
    keypoint_mask,
    make_loss,
)
from siftrain_ros.losses.common import TRAIN_SIFT, training_sift
from siftrain_ros.losses.interest_point import prefilter_threshold
from siftrain_ros.sift import Sift, build_scale_space
from siftrain_ros.sift.detect import extrema_mask

SIZE = 48


def blob(cx: float, cy: float, sigma: float = 3.0, size: int = SIZE) -> torch.Tensor:
    """(1, 1, size, size) image in 0..1: a bright Gaussian blob on a mid-gray background."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                          torch.arange(size, dtype=torch.float32), indexing="ij")
    return (0.3 + 0.6 * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)))[None, None]


def textured(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 1, SIZE, SIZE, generator=generator)


@pytest.mark.parametrize("kind", ["dprnet", "ggirnet", "l1"])
def test_zero_on_identical_and_gradient_flows(kind: str) -> None:
    loss = make_loss(kind)
    clean = textured()
    assert float(loss(clean.clone(), clean)["total"]) == pytest.approx(0.0, abs=1e-6)
    output = (clean + 0.05 * textured(1)).requires_grad_(True)
    total = loss(output, clean)["total"]
    assert float(total.detach()) > 0
    total.backward()
    assert output.grad is not None and torch.isfinite(output.grad).all()
    assert float(output.grad.abs().sum()) > 0


def test_loss_term_names() -> None:
    clean = textured()
    assert set(DogPyramidLoss()(clean, clean)) == {"dog", "ip", "pixel", "total"}
    assert set(GaussianGradientLoss()(clean, clean)) == {"gradient", "pixel", "total"}
    assert set(PixelL1Loss()(clean, clean)) == {"pixel", "total"}
    with pytest.raises(ValueError, match="loss kind"):
        make_loss("psnr")


def test_keypoint_mask_agrees_with_detector() -> None:
    """The loss's candidate mask is the detector's 3x3x3 test (away from the border)."""
    space = build_scale_space(textured()[:1] * 255.0, TRAIN_SIFT)
    threshold = prefilter_threshold(TRAIN_SIFT)
    for dog in space.dogs[:2]:
        ours = keypoint_mask(dog, threshold)[0]
        detector = extrema_mask(dog[0], threshold)[1:-1]
        b = 5
        assert torch.equal(ours[:, b:-b, b:-b], detector[:, b:-b, b:-b])


def test_margins_positive_at_blob_extremum() -> None:
    space = build_scale_space(blob(24, 24) * 255.0, TRAIN_SIFT)
    max_margin, min_margin = extremum_margins(space.dogs[0])
    # A bright blob is a DoG minimum (DoG = blurred - less blurred < 0 at the peak).
    assert float(min_margin.max()) > 0
    assert keypoint_mask(space.dogs[0], prefilter_threshold(TRAIN_SIFT)).any()


def ip(output: torch.Tensor, clean: torch.Tensor) -> float:
    out = build_scale_space(output * 255.0, TRAIN_SIFT)
    ref = build_scale_space(clean * 255.0, TRAIN_SIFT)
    return float(interest_point_loss(out.dogs, ref.dogs, TRAIN_SIFT))


def test_interest_point_loss_reacts_to_moved_and_removed_extrema() -> None:
    clean = blob(24, 24)
    noise = 0.002 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    same = ip(clean + noise, clean)
    moved = ip(blob(27, 24), clean)
    removed = ip(torch.full_like(clean, 0.3), clean)
    assert same < 0.2 * moved
    assert same < 0.2 * removed


def test_interest_point_gradient_restores_a_missing_extremum() -> None:
    """Where the output lacks the clean extremum, the loss still has a gradient (margins are
    not clipped) that points towards re-creating it."""
    clean = blob(24, 24)
    output = torch.full_like(clean, 0.3).requires_grad_(True)
    out = build_scale_space(output * 255.0, TRAIN_SIFT)
    ref = build_scale_space(clean * 255.0, TRAIN_SIFT)
    interest_point_loss(out.dogs, ref.dogs, TRAIN_SIFT).backward()
    assert output.grad is not None
    # Descending the gradient brightens the blob centre.
    assert float(output.grad[0, 0, 24, 24]) < 0


def ip_gradient(output: torch.Tensor, clean: torch.Tensor, recall_weight: float
                ) -> torch.Tensor:
    output = output.clone().requires_grad_(True)
    out = build_scale_space(output * 255.0, TRAIN_SIFT)
    ref = build_scale_space(clean * 255.0, TRAIN_SIFT)
    interest_point_loss(out.dogs, ref.dogs, TRAIN_SIFT, recall_weight=recall_weight).backward()
    assert output.grad is not None
    return output.grad[0, 0].abs()


def test_recall_weight_shifts_the_gradient_to_missing_clean_extrema() -> None:
    """The output misses the clean blob at x=14 and has a false one at x=34: a recall weight
    > 1 makes re-creating the missing one matter more than suppressing the false one."""
    clean, output = blob(14, 24), blob(34, 24)

    def missing_over_false(recall_weight: float) -> float:
        grad = ip_gradient(output, clean, recall_weight)
        return float(grad[18:31, 8:21].sum() / grad[18:31, 28:41].sum())

    assert missing_over_false(4.0) > 2.0 * missing_over_false(1.0)
    same = build_scale_space(clean * 255.0, TRAIN_SIFT).dogs
    assert float(interest_point_loss(same, same, TRAIN_SIFT, recall_weight=4.0)) == 0.0


def test_recall_weight_one_is_the_plain_union_and_invalid_values_raise() -> None:
    clean, output = blob(14, 24), blob(34, 24)
    assert ip(output, clean) == pytest.approx(
        float(DogPyramidLoss(recall_weight=1.0)(output, clean)["ip"]), rel=1e-6)
    space = build_scale_space(clean * 255.0, TRAIN_SIFT).dogs
    with pytest.raises(ValueError, match="recall_weight"):
        interest_point_loss(space, space, TRAIN_SIFT, recall_weight=0.5)
    with pytest.raises(ValueError, match="dprnet loss only"):
        make_loss("l1", recall_weight=2.0)
    assert make_loss("dprnet", recall_weight=3.0).recall_weight == 3.0


def test_keep_weight_shifts_the_gradient_to_clean_extrema_the_input_still_has() -> None:
    """The clean image has blobs at x=14 and x=34, the output neither, the rainy input only
    the one at x=14: a keep weight > 1 makes keeping that one matter more than the other."""
    clean = torch.minimum(blob(14, 24) + blob(34, 24) - 0.3, torch.tensor(1.0))
    rainy, output = blob(14, 24), torch.full_like(clean, 0.3)

    def kept_over_lost(keep_weight: float) -> float:
        out = output.clone().requires_grad_(True)
        terms = DogPyramidLoss(keep_weight=keep_weight)(out, clean, rainy)
        terms["ip"].backward()
        assert out.grad is not None
        grad = out.grad[0, 0].abs()
        return float(grad[18:31, 8:21].sum() / grad[18:31, 28:41].sum())

    assert kept_over_lost(4.0) > 2.0 * kept_over_lost(1.0)
    dogs = build_scale_space(clean * 255.0, TRAIN_SIFT).dogs
    assert float(interest_point_loss(dogs, dogs, TRAIN_SIFT, input_dogs=dogs,
                                     keep_weight=4.0)) == 0.0


def test_keep_weight_needs_the_input_and_is_dprnet_only() -> None:
    clean = blob(14, 24)
    dogs = build_scale_space(clean * 255.0, TRAIN_SIFT).dogs
    with pytest.raises(ValueError, match="input_dogs"):
        interest_point_loss(dogs, dogs, TRAIN_SIFT, keep_weight=2.0)
    with pytest.raises(ValueError, match="keep_weight must be >= 1"):
        DogPyramidLoss(keep_weight=0.5)
    with pytest.raises(ValueError, match="network input"):
        DogPyramidLoss(keep_weight=2.0)(clean, clean)
    with pytest.raises(ValueError, match="dprnet loss only"):
        make_loss("ggirnet", keep_weight=2.0)
    assert make_loss("dprnet", keep_weight=3.0).keep_weight == 3.0
    # Weight 1 ignores the input: the same loss as without it.
    other = blob(30, 20)
    assert float(DogPyramidLoss()(other, clean, clean)["total"]) == pytest.approx(
        float(DogPyramidLoss()(other, clean)["total"]))


def test_upsampled_octave_sees_the_fine_keypoints_rounds_1_to_7_missed() -> None:
    """A sigma-2 px blob is a keypoint of octave -1 only: the detector finds it there, the
    training pyramid without that octave has no extremum for it (an output that loses it costs
    no interest point loss), and the pyramid with it does."""
    clean = blob(24, 24, sigma=2.0)
    found = Sift()((clean[0, 0].numpy() * 255).astype(np.uint8))
    assert len(found) > 0
    assert set(((found.octave & 255).astype(np.int8)).tolist()) == {-1}
    missing = torch.full_like(clean, 0.3)

    def ip(upsampled: bool) -> float:
        config = training_sift(upsampled)
        return float(interest_point_loss(build_scale_space(missing * 255, config).dogs,
                                         build_scale_space(clean * 255, config).dogs, config))

    assert ip(False) == 0.0
    assert ip(True) > 0.5
    assert make_loss("dprnet", upsampled_octave=True).config.upsample
    assert make_loss("ggirnet", upsampled_octave=True).config.upsample
    assert not make_loss("dprnet").config.upsample
    with pytest.raises(ValueError, match="upsampled_octave"):
        make_loss("l1", upsampled_octave=True)
