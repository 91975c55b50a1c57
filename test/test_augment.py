"""Training-crop augmentation: both planes of a pair move together, 90-degree turns only where
rain is rendered afterwards, contrast and scale within their ranges, and the sampler only
augments when asked."""

from __future__ import annotations

import numpy as np
import pytest

from siftrain_ros.training import Augmentation, PatchSampler, TrainingImages
from siftrain_ros.training.augment import augmented_crop

PATCH = 32
DEFAULT = Augmentation()


def vertical_ramp(size: int = 96) -> np.ndarray:
    """(size, size) uint8, intensity rising with the row: rows are constant."""
    return np.repeat(np.linspace(20, 230, size)[:, None], size, axis=1).astype(np.uint8)


def textured(size: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def crops(rotate: bool, augmentation: Augmentation = DEFAULT, count: int = 40,
          planes: tuple[np.ndarray, ...] | None = None) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(3)
    planes = planes if planes is not None else (vertical_ramp(),)
    return [augmented_crop(rng, planes, PATCH, augmentation, rotate) for _ in range(count)]


def rows_constant(image: np.ndarray) -> bool:
    return bool(np.all(image.max(axis=1).astype(int) - image.min(axis=1) <= 1))


def test_both_planes_of_a_pair_get_the_same_window_pose_and_contrast() -> None:
    clean = textured()
    rainy = clean.copy()
    rainy[40:44, :] = 255  # a horizontal "streak" band
    for out_rainy, out_clean in crops(rotate=False, planes=(rainy, clean)):
        # Away from the band the two planes must be pixel-identical.
        assert (out_rainy == out_clean).mean() > 0.5
    for out_a, out_b in crops(rotate=True, planes=(clean, clean.copy())):
        assert np.array_equal(out_a, out_b)


def test_rainy_pairs_are_never_turned_by_90_degrees() -> None:
    assert all(rows_constant(crop) for (crop,) in crops(rotate=False))


def test_backgrounds_for_synthetic_rain_are_turned_sometimes() -> None:
    turned = [not rows_constant(crop) for (crop,) in crops(rotate=True)]
    assert 5 <= sum(turned) <= 35  # half of the draws, binomial(40, 0.5)
    off = Augmentation(rotate=False)
    assert all(rows_constant(crop) for (crop,) in crops(rotate=True, augmentation=off))


def test_contrast_gain_shrinks_the_spread_by_its_factor() -> None:
    image = textured(size=PATCH)  # patch-sized: no rescale, so only the gain acts
    fixed = Augmentation(min_scale=1.0, contrast=(0.5, 0.5), brightness=0.0)
    for (crop,) in crops(rotate=True, augmentation=fixed, count=5, planes=(image,)):
        assert crop.std() == pytest.approx(0.5 * image.std(), rel=0.02)
        assert crop.mean() == pytest.approx(image.mean(), abs=1.0)


def test_downscaling_stays_within_the_range_and_never_upscales() -> None:
    # A ramp of slope 1 gray level per pixel: a crop downscaled by s has slope 1/s.
    ramp = np.repeat(np.arange(96)[:, None], 96, axis=1).astype(np.uint8)
    plain = Augmentation(min_scale=0.5, contrast=(1.0, 1.0), brightness=0.0)
    slopes = [abs(float(np.diff(crop[:, 0].astype(float)).mean()))
              for (crop,) in crops(rotate=False, augmentation=plain, planes=(ramp,))]
    assert min(slopes) >= 0.95 and max(slopes) <= 2.05
    assert max(slopes) > 1.5  # the range is used, not only its native end


def test_same_generator_state_same_crop() -> None:
    first, second = crops(rotate=True, count=3), crops(rotate=True, count=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("bad", [{"min_scale": 0.0}, {"min_scale": 1.5},
                                 {"contrast": (0.9, 0.5)}, {"brightness": -1.0}])
def test_augmentation_rejects_bad_ranges(bad: dict) -> None:
    with pytest.raises(ValueError):
        Augmentation(**bad)


def test_augmented_crop_refuses_an_image_smaller_than_the_patch() -> None:
    with pytest.raises(ValueError, match="smaller than patch"):
        augmented_crop(np.random.default_rng(0), (textured(size=16),), PATCH, Augmentation(),
                       rotate=True)


def _sampler_draws(augmentation: Augmentation | None) -> list[tuple[np.ndarray, np.ndarray]]:
    images = TrainingImages(clean=[vertical_ramp()], real_pairs=[])
    sampler = PatchSampler(images, PATCH, real_fraction=0.0, clean_fraction=1.0,
                           augmentation=augmentation)
    rng = np.random.default_rng(5)
    return [sampler.sample_one(rng) for _ in range(30)]


def test_sampler_applies_the_augmentation_only_when_asked() -> None:
    plain = _sampler_draws(None)
    assert all(rows_constant(clean) for _, clean in plain)  # flips only: no turns
    augmented = _sampler_draws(Augmentation())
    assert any(not rows_constant(clean) for _, clean in augmented)
