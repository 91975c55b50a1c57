"""Rain renderer: determinism, shapes and dtypes, streak geometry, haze model, bad input."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from siftrain_ros.rain import (
    INTENSITIES,
    RainParams,
    add_rain,
    composite,
    rain_layer,
    rainy_pairs,
    streak_kernel,
)


def _scene(h: int = 120, w: int = 160, channels: int = 0) -> np.ndarray:
    """Textured uint8 test image, so the check does not depend on a flat background."""
    rng = np.random.default_rng(123)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 3)
    gray = cv2.normalize(noise, None, 30, 200, cv2.NORM_MINMAX).astype(np.uint8)
    return np.dstack([gray] * channels) if channels else gray


def _no_streaks(**ranges: tuple[float, float]) -> RainParams:
    return dataclasses.replace(RainParams(), density=(0.0, 0.0), **ranges)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize("intensity", ["light", "medium", "heavy"])
def test_same_seed_is_bit_identical(intensity: str) -> None:
    image = _scene(channels=3)
    params = RainParams.preset(intensity)
    first = add_rain(image, 7, params)
    assert np.array_equal(first, add_rain(image.copy(), 7, params))


def test_different_seeds_differ() -> None:
    image = _scene()
    outputs = [add_rain(image, seed, RainParams.preset("medium")) for seed in range(4)]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert not np.array_equal(outputs[i], outputs[j])


def test_input_is_not_modified() -> None:
    image = _scene()
    before = image.copy()
    add_rain(image, 0, RainParams.preset("heavy"))
    assert np.array_equal(image, before)


@pytest.mark.parametrize("shape", [(17, 23), (17, 23, 1), (17, 23, 3), (1, 1), (2, 301),
                                   (121, 160), (121, 161, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_shape_and_dtype_preserved(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "u":
        image = rng.integers(0, np.iinfo(dtype).max, shape).astype(dtype)
    else:
        image = rng.uniform(0, 1, shape).astype(dtype)
    out = add_rain(image, 3, RainParams.preset("heavy"))
    assert out.shape == image.shape and out.dtype == image.dtype
    if np.dtype(dtype).kind == "f":
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_float_range_0_255_matches_uint8() -> None:
    image = _scene(channels=3)
    params = RainParams.preset("heavy")
    as_uint8 = add_rain(image, 5, params)
    as_float = add_rain(image.astype(np.float32), 5, params)
    assert as_float.max() > 1.0  # stayed in 0..255
    assert np.abs(as_float - as_uint8.astype(np.float32)).max() <= 0.5 + 1e-3
    scaled = add_rain(image.astype(np.float32) / 255, 5, params)
    assert np.allclose(scaled * 255, as_float, atol=1e-3)


def test_uint8_clips_instead_of_wrapping() -> None:
    white = np.full((64, 64), 255, np.uint8)
    params = dataclasses.replace(RainParams.preset("heavy"), transmission=(1.0, 1.0))
    assert (add_rain(white, 0, params) == 255).all()


def test_no_rain_is_identity() -> None:
    image = _scene(channels=3)
    assert np.array_equal(add_rain(image, 1, _no_streaks(transmission=(1.0, 1.0))), image)


def test_rain_changes_image_more_when_heavier() -> None:
    image = _scene(240, 320)
    seeds = range(4)
    light = np.mean([_mad(add_rain(image, s, RainParams.preset("light")), image) for s in seeds])
    heavy = np.mean([_mad(add_rain(image, s, RainParams.preset("heavy")), image) for s in seeds])
    assert heavy > 20.0
    assert heavy > 2.0 * light > 0.0


def test_streak_layer_range_and_density() -> None:
    rng = np.random.default_rng(0)
    sparse = rain_layer((200, 200), rng, dataclasses.replace(RainParams(), density=(0.5, 0.5)))
    dense = rain_layer((200, 200), rng, dataclasses.replace(RainParams(), density=(5.0, 5.0)))
    for layer in (sparse, dense):
        assert layer.dtype == np.float32 and layer.shape == (200, 200)
        assert layer.min() >= 0.0 and layer.max() <= 1.0
    assert dense.mean() > 3.0 * sparse.mean() > 0.0
    empty = rain_layer((50, 60), rng, dataclasses.replace(RainParams(), density=(0.0, 0.0)))
    assert not empty.any()


def test_streak_layer_is_deterministic_by_generator() -> None:
    params = RainParams.preset("heavy")
    first = rain_layer((90, 70), np.random.default_rng(11), params)
    assert np.array_equal(first, rain_layer((90, 70), np.random.default_rng(11), params))
    assert not np.array_equal(first, rain_layer((90, 70), np.random.default_rng(12), params))


def _gradient_energy(layer: np.ndarray) -> tuple[float, float]:
    dx = np.abs(np.diff(layer, axis=1)).mean()
    dy = np.abs(np.diff(layer, axis=0)).mean()
    return float(dx), float(dy)


def test_vertical_streaks_vary_across_not_along() -> None:
    params = dataclasses.replace(RainParams.preset("heavy"), angle_deg=(0.0, 0.0))
    layer = rain_layer((160, 160), np.random.default_rng(2), params)
    dx, dy = _gradient_energy(layer)
    assert dx > 2.0 * dy


def test_tilted_streaks_follow_angle() -> None:
    params = dataclasses.replace(RainParams.preset("heavy"), angle_deg=(30.0, 30.0))
    layer = rain_layer((160, 160), np.random.default_rng(2), params)
    # Positive angle is "/": intensity is constant along (+x, -y), so it changes least there.
    along = np.abs(layer[1:, :-1] - layer[:-1, 1:]).mean()
    across = np.abs(layer[1:, 1:] - layer[:-1, :-1]).mean()
    assert across > 1.5 * along


def test_streak_kernel_geometry() -> None:
    kernel = streak_kernel(21.0, 1.0, 0.0)
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    assert kernel.shape[0] >= 21 and kernel.shape[0] > kernel.shape[1]
    centre = kernel[:, kernel.shape[1] // 2]
    assert 0.7 < centre.max() <= 1.0
    assert (centre > 0.5).sum() in (20, 21, 22)  # length in pixels
    tilted = streak_kernel(21.0, 1.0, 45.0)
    assert abs(tilted.shape[0] - tilted.shape[1]) <= 1
    # "/" puts mass in the top-right and bottom-left quadrants.
    h, w = tilted.shape[0] // 2, tilted.shape[1] // 2
    assert tilted[:h, w + 1:].sum() > 10 * tilted[:h, :w].sum()


def test_haze_lifts_dark_towards_airlight() -> None:
    black = np.zeros((40, 50), np.uint8)
    out = add_rain(black, 0, _no_streaks(transmission=(0.5, 0.5), airlight=(0.8, 0.8)))
    assert (out == round(0.5 * 0.8 * 255)).all()
    white = np.full((40, 50, 3), 1.0, np.float32)
    out = add_rain(white, 0, _no_streaks(transmission=(0.6, 0.6), airlight=(0.5, 0.5)))
    assert np.allclose(out, 0.6 + 0.4 * 0.5)


def test_heavy_preset_veils_dark_images() -> None:
    dark = np.full((80, 80), 10, np.uint8)
    assert np.median(add_rain(dark, 4, RainParams.preset("heavy"))) > 40


def test_composite_formula() -> None:
    background = np.array([[0.0, 0.5], [1.0, 0.2]], np.float32)
    streaks = np.array([[0.0, 0.3], [0.5, 0.0]], np.float32)
    out = composite(background, streaks, 0.8, 0.9)
    expected = np.clip(0.8 * (background + streaks) + 0.2 * 0.9, 0, 1)
    assert np.allclose(out, expected)
    colour = composite(np.dstack([background] * 3), streaks, 0.8, 0.9)
    assert colour.shape == (2, 2, 3) and np.allclose(colour[..., 2], expected)


def test_presets() -> None:
    light, medium, heavy = (RainParams.preset(n) for n in ("light", "medium", "heavy"))
    assert medium == RainParams()
    assert light.density[1] <= heavy.density[0]
    assert heavy.transmission[1] <= light.transmission[0]
    # Dense rain: the curtain of many faint streaks that real rain photographs show.
    dense = RainParams.preset("dense")
    assert dense.density[0] >= heavy.density[1] and dense.brightness[1] < heavy.brightness[0]
    assert set(INTENSITIES) == {"light", "medium", "heavy", "dense"}
    with pytest.raises(ValueError, match="unknown rain intensity"):
        RainParams.preset("drizzle")  # type: ignore[arg-type]


@pytest.mark.parametrize("field, value", [
    ("density", (-1.0, 1.0)), ("length_px", (5.0, 2.0)), ("width_px", (0.0, 1.0)),
    ("angle_deg", (-95.0, 0.0)), ("brightness", (0.5, 1.5)), ("blur", (-1.0, 0.0)),
    ("layers", (0, 2)), ("layers", (1.5, 2.0)), ("transmission", (0.0, 0.5)),
    ("airlight", (0.5, 2.0)), ("density", (float("nan"), 1.0)), ("density", 1.0),
])
def test_bad_params_raise(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        RainParams(**{field: value})


@pytest.mark.parametrize("image, message", [
    (np.zeros((0, 10), np.uint8), "empty"),
    (np.zeros((10,), np.uint8), "shape"),
    (np.zeros((4, 10, 10), np.uint8), "shape"),
    (np.zeros((10, 10, 4), np.uint8), "shape"),
    (np.zeros((10, 10), np.int32), "dtype"),
    (np.full((10, 10), np.nan, np.float32), "NaN"),
    (np.full((10, 10), np.inf, np.float64), "NaN or infinite"),
    (np.full((10, 10), 300.0, np.float32), "0..1 or 0..255"),
    ([[1, 2], [3, 4]], "numpy array"),
])
def test_bad_images_raise(image: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        add_rain(image, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed_raises(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        add_rain(_scene(), seed)  # type: ignore[arg-type]


def test_rain_layer_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        rain_layer((0, 10), np.random.default_rng(0))


def test_rainy_pairs(tmp_path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"clean{i}.png"
        cv2.imwrite(str(path), _scene(40 + i, 50, channels=3))
        paths.append(path)
    pairs = list(rainy_pairs(paths, seed=9, params=RainParams.preset("heavy")))
    again = list(rainy_pairs(paths, seed=9, params=RainParams.preset("heavy")))
    assert len(pairs) == 3
    for (rainy, clean), (rainy2, _), i in zip(pairs, again, range(3), strict=True):
        assert clean.shape == rainy.shape == (40 + i, 50) and rainy.dtype == np.uint8
        assert np.array_equal(rainy, rainy2) and not np.array_equal(rainy, clean)
    colour = next(rainy_pairs(paths, seed=9, gray=False))
    assert colour[0].shape == (40, 50, 3)
    with pytest.raises(ValueError, match="not a readable image"):
        next(rainy_pairs([tmp_path / "missing.png"], seed=0))
