"""Rain-layer transplant: the rain of one additive pair over another background, exactly,
with the source's saturated pixels kept saturated; the sampler uses it only when asked."""

from __future__ import annotations

import numpy as np
import pytest
from test_training import PATCH, images, smooth_image

from siftrain_ros.cli import main
from siftrain_ros.training import PatchSampler
from siftrain_ros.training.data import load_training_images
from siftrain_ros.training.transplant import MAX_SATURATED_SHARE, lends_rain, transplant_rain


def additive_pair(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 120, shape).astype(np.uint8)
    layer = np.where(rng.random(shape) < 0.2, rng.integers(1, 100, shape), 0).astype(np.uint8)
    return clean + layer, clean, layer


def test_the_layer_moves_exactly_where_nothing_clips() -> None:
    rainy, clean, layer = additive_pair(0, (40, 60))
    background = np.random.default_rng(1).integers(0, 150, (40, 60)).astype(np.uint8)
    moved, target = transplant_rain(rainy, clean, background, np.random.default_rng(2))
    assert np.array_equal(target, background)  # same shape: the whole image, no offset
    assert np.array_equal(moved.astype(int) - target, layer)


def test_saturated_source_pixels_stay_saturated_not_inverted() -> None:
    clean = np.full((20, 30), 200, np.uint8)
    clean[:, :15] = 100
    rainy = clean.copy()
    rainy[5:15, :] = 255  # a streak that clips at 255 over both halves
    background = np.zeros((20, 30), np.uint8)
    moved, _ = transplant_rain(rainy, clean, background, np.random.default_rng(0))
    # Without the rule the streak would land as 155 on one half and 55 on the other: the
    # source background's edge, carried over inverted.
    assert (moved[5:15] == 255).all() and (moved[:5] == 0).all()


def test_a_landscape_pair_turns_a_portrait_background_and_crops_to_the_common_size() -> None:
    rainy, clean, _ = additive_pair(3, (30, 50))
    background = np.random.default_rng(4).integers(0, 100, (45, 28)).astype(np.uint8)
    moved, target = transplant_rain(rainy, clean, background, np.random.default_rng(5))
    assert moved.shape == target.shape == (28, 45)
    assert (moved >= target).all()


def test_rejects_a_pair_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        transplant_rain(np.zeros((4, 5), np.uint8), np.zeros((5, 4), np.uint8),
                        np.zeros((8, 8), np.uint8), np.random.default_rng(0))


def test_only_pairs_that_saturate_little_lend_their_rain() -> None:
    rainy = np.zeros((10, 100), np.uint8)
    rainy[:, : int(MAX_SATURATED_SHARE * 100)] = 255
    assert lends_rain(rainy)
    rainy[:, : int(MAX_SATURATED_SHARE * 100) + 1] = 255
    assert not lends_rain(rainy)


def test_sampler_refuses_to_transplant_without_a_pair_that_lends_rain() -> None:
    data = images(count=1)
    data.real_pairs = [(np.full_like(c, 255), c) for _, c in data.real_pairs]
    with pytest.raises(ValueError, match="lend its rain"):
        PatchSampler(data, PATCH, transplant_fraction=0.5)
    PatchSampler(data, PATCH)  # without transplants the pair is still fine


def draws(sampler: PatchSampler, n: int = 12, seed: int = 7) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    return [sampler.sample_one(rng) for _ in range(n)]


def test_sampler_lays_real_rain_over_other_backgrounds() -> None:
    data = images(size=PATCH, count=1)
    data.clean.append(smooth_image(99))  # a background no real pair has
    own_background = data.real_pairs[0][1]
    drawn = draws(PatchSampler(data, PATCH, real_fraction=1.0, transplant_fraction=1.0), 40)
    others = [(r, c) for r, c in drawn if not np.array_equal(np.sort(c, axis=None),
                                                             np.sort(own_background, axis=None))]
    assert others, "some crops must come with the other background"
    assert all((r >= c).all() and (r > c).any() for r, c in others)  # rain added, nothing lost


def test_zero_transplant_fraction_replays_the_earlier_stream() -> None:
    data = images(count=2)
    default = draws(PatchSampler(data, PATCH, real_fraction=0.5))
    explicit = draws(PatchSampler(data, PATCH, real_fraction=0.5, transplant_fraction=0.0))
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(default, explicit, strict=True))


def test_sampler_rejects_a_transplant_fraction_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="transplant_fraction must be in"):
        PatchSampler(images(), PATCH, transplant_fraction=1.2)


def test_train_cli_reports_a_bad_transplant_fraction(shared_data, tmp_path,
                                                      capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "l1", "--transplant-fraction", "1.5", "--data", str(shared_data),
                 "--out", str(tmp_path), "--steps", "1"])
    assert code == 2
    assert "transplant_fraction must be in [0, 1]" in capsys.readouterr().err


def test_the_shared_training_pairs_lend_additive_rain(shared_data) -> None:
    # The 5 % rule must leave real rain to lend on the actual training set (35 of 80 pairs
    # on 2026-12-04); if a data update made it none, --transplant-fraction would refuse.
    real = load_training_images(shared_data).real_pairs
    sources = [pair for pair in real if lends_rain(pair[0])]
    assert 20 <= len(sources) < len(real)
    assert all((rainy >= clean).mean() > 0.99 for rainy, clean in sources)  # additive rain
