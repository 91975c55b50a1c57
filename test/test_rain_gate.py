"""The rain gate: a frame the deraining net barely changes gets plain SIFT of the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from siftrain_ros import samples
from siftrain_ros.frontend import (
    DEFAULT_RAIN_GATE,
    FeatureFrontEnd,
    FrontEndConfig,
    TorchBackend,
)
from siftrain_ros.frontend.weights import load_net
from siftrain_ros.rain import RainParams, add_rain

SIZE = (320, 240)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    gray = cv2.imread(str(samples.tum_frames()[0]), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(gray, SIZE, interpolation=cv2.INTER_AREA)


def test_gate_chooses_between_derained_and_plain_sift(shipped_backend: TorchBackend,
                                                      frame: np.ndarray) -> None:
    never = FeatureFrontEnd(FrontEndConfig(rain_gate=0.0), shipped_backend)(frame)
    always = FeatureFrontEnd(FrontEndConfig(rain_gate=255.0), shipped_backend)(frame)
    plain = FeatureFrontEnd(FrontEndConfig(derain=False))(frame)
    assert not never.gated_dry and always.gated_dry
    assert plain.rain_level is None and not plain.gated_dry
    np.testing.assert_array_equal(always.features.xy, plain.features.xy)
    np.testing.assert_array_equal(always.features.descriptors, plain.features.descriptors)
    assert len(never.features) != len(plain.features) or not np.array_equal(
        never.features.xy, plain.features.xy)
    # The rain level is the mean absolute correction of DPRNet (its output clamped to 0..1, as
    # the backends return it), in gray levels.
    x = torch.from_numpy(frame.astype(np.float32))[None, None] / 255.0
    with torch.no_grad():
        want = float((load_net("dprnet")(x).clamp(0, 1) - x).abs().mean() * 255.0)
    assert never.rain_level == pytest.approx(want, rel=1e-4)
    assert always.rain_level == pytest.approx(want, rel=1e-4)


def test_shipped_gate_passes_a_dry_frame_and_derains_heavy_rain(shipped_backend: TorchBackend,
                                                                 frame: np.ndarray) -> None:
    front = FeatureFrontEnd(FrontEndConfig(rain_gate=DEFAULT_RAIN_GATE), shipped_backend)
    dry = front(frame)
    wet = front(add_rain(frame, seed=0, params=RainParams.preset("heavy")))
    assert dry.gated_dry and dry.rain_level < DEFAULT_RAIN_GATE
    assert not wet.gated_dry and wet.rain_level > 3 * DEFAULT_RAIN_GATE


@pytest.mark.parametrize("gate", [-0.5, 256.0, float("nan")])
def test_rain_gate_outside_gray_levels_is_refused(gate: float) -> None:
    with pytest.raises(ValueError, match="rain_gate"):
        FrontEndConfig(rain_gate=gate)


def _texture(seed: int = 0, size: int = 64) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 1.5)
    return torch.from_numpy(noise)[None, None]


def test_keep_dry_detail_takes_smooth_and_strong_corrections_and_drops_weak_fine_ones() -> None:
    from siftrain_ros.frontend.local_gate import keep_dry_detail

    frame = _texture()
    torch.testing.assert_close(keep_dry_detail(frame, frame.clone(), 16.0), frame)
    # A veil or brightness change is smooth: applied in full.
    brighter = frame + 20.0
    torch.testing.assert_close(keep_dry_detail(frame, brighter, 16.0), brighter)
    # A bright 2-px streak removed by the net (a 60-level fine correction): taken in full on it.
    streak = frame.clone()
    streak[..., 30:32, :] -= 60.0
    out = keep_dry_detail(frame, streak, 16.0)
    torch.testing.assert_close(out[..., 30:32, 8:-8], streak[..., 30:32, 8:-8], atol=6.0,
                               rtol=0.0)
    # The net smoothing dry texture (a weak fine correction): mostly dropped.
    smoothed = torch.from_numpy(cv2.GaussianBlur(frame[0, 0].numpy(), (0, 0), 1.0))[None, None]
    kept = keep_dry_detail(frame, smoothed, 16.0)
    assert float((kept - frame).abs().mean()) < 0.5 * float((smoothed - frame).abs().mean())
    with pytest.raises(ValueError, match="contrast"):
        keep_dry_detail(frame, frame, 0.0)


def test_local_rain_gate_changes_rainy_features_and_is_validated(shipped_backend: TorchBackend,
                                                                 frame: np.ndarray) -> None:
    rainy = add_rain(frame, seed=1, params=RainParams.preset("medium"))
    whole = FeatureFrontEnd(FrontEndConfig(), shipped_backend)(rainy).features
    local = FeatureFrontEnd(FrontEndConfig(local_rain_gate=16.0), shipped_backend)(rainy).features
    assert len(whole) != len(local) or not np.array_equal(whole.xy, local.xy)
    with pytest.raises(ValueError, match="local_rain_gate"):
        FrontEndConfig(local_rain_gate=-1.0)
