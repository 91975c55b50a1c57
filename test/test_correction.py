"""How the networks' output is used: the flip self-ensemble and the correction strength."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siftrain_ros import samples
from siftrain_ros.cli import main
from siftrain_ros.frontend import FeatureFrontEnd, FrontEndConfig, TorchBackend, load_derain_nets
from siftrain_ros.frontend.self_ensemble import flip_ensemble
from siftrain_ros.rain import RainParams, add_rain

SIZE = (161, 123)  # odd on purpose: the mirror must line up pixel for pixel


@pytest.fixture(scope="module")
def rainy() -> np.ndarray:
    gray = cv2.imread(str(samples.tum_frames()[0]), cv2.IMREAD_GRAYSCALE)
    gray = cv2.resize(gray, SIZE, interpolation=cv2.INTER_AREA)
    return add_rain(gray, seed=3, params=RainParams.preset("heavy"))


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32))[None, None] / 255.0


def test_flip_ensemble_is_the_mean_of_the_frame_and_its_mirror(shipped_backend: TorchBackend,
                                                               rainy: np.ndarray) -> None:
    x = _tensor(rainy)
    out = flip_ensemble(shipped_backend, x)
    direct, mirrored = shipped_backend(x), shipped_backend(x.flip(-1))
    torch.testing.assert_close(out.detect, (direct.detect + mirrored.detect.flip(-1)) / 2)
    torch.testing.assert_close(out.describe, (direct.describe + mirrored.describe.flip(-1)) / 2)
    assert out.detect.shape == x.shape
    # The nets are not mirror-symmetric, so the second pass adds something.
    assert float((out.detect - direct.detect).abs().max()) > 1e-3
    # A frame that is its own mirror image gets a mirror-symmetric output, which one pass of
    # the nets does not give.
    symmetric = torch.cat([x[..., :80], x[..., :80].flip(-1)], -1)
    ensemble = flip_ensemble(shipped_backend, symmetric).detect
    torch.testing.assert_close(ensemble, ensemble.flip(-1), atol=1e-6, rtol=0)
    single = shipped_backend(symmetric).detect
    assert float((single - single.flip(-1)).abs().max()) > 1e-3


def test_flip_ensemble_keeps_one_image_for_a_single_net() -> None:
    """The L1 ablation is one net for detection and description: still one image, one scale
    space."""
    ablation = TorchBackend(*load_derain_nets("l1", "lite"))
    x = torch.rand(1, 1, 37, 45)
    out = flip_ensemble(ablation, x)
    assert out.describe is out.detect


def test_front_end_flip_ensemble_changes_features_and_rain_level(shipped_backend: TorchBackend,
                                                                 rainy: np.ndarray) -> None:
    single = FeatureFrontEnd(FrontEndConfig(), shipped_backend)(rainy)
    both = FeatureFrontEnd(FrontEndConfig(flip_ensemble=True), shipped_backend)(rainy)
    x = _tensor(rainy)
    want = float((flip_ensemble(shipped_backend, x).detect - x).abs().mean())
    assert both.rain_level == pytest.approx(want * 255.0, rel=1e-4)
    assert both.rain_level != pytest.approx(single.rain_level, rel=1e-4)
    assert len(both.features) != len(single.features) or not np.array_equal(
        both.features.xy, single.features.xy)


def test_correction_strength_runs_from_the_frame_to_the_nets_output(shipped_backend: TorchBackend,
                                                                    rainy: np.ndarray) -> None:
    def features(strength: float):
        return FeatureFrontEnd(FrontEndConfig(correction_strength=strength), shipped_backend)(rainy)

    none, half, full = features(0.0), features(0.5), features(1.0)
    plain = FeatureFrontEnd(FrontEndConfig(derain=False))(rainy).features
    # s = 0 keeps the frame: exactly plain SIFT of it.
    np.testing.assert_array_equal(none.features.xy, plain.xy)
    np.testing.assert_array_equal(none.features.descriptors, plain.descriptors)
    default = FeatureFrontEnd(FrontEndConfig(), shipped_backend)(rainy).features
    np.testing.assert_array_equal(full.features.xy, default.xy)
    for other in (plain, full.features):
        assert len(half.features) != len(other) or not np.array_equal(half.features.xy,
                                                                      other.xy)
    # The rain level (and so the gate) is measured on the nets' output, before s applies.
    assert none.rain_level == pytest.approx(full.rain_level) == pytest.approx(half.rain_level)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_correction_strength_outside_0_1_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match="correction_strength"):
        FrontEndConfig(correction_strength=strength)


def test_cli_reports_a_bad_correction_strength(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((64, 64), 128, np.uint8))
    assert main(["extract", str(image), "--out", str(tmp_path / "out"),
                 "--correction-strength", "1.5"]) == 2
    assert "correction_strength must be in [0, 1]" in capsys.readouterr().err


def test_eval_records_the_options_and_strength_0_is_plain_sift(tmp_path: Path) -> None:
    import json

    clean = tmp_path / "clean"
    clean.mkdir()
    gray = cv2.imread(str(samples.tum_frames()[0]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(clean / "frame1.png"), cv2.resize(gray, (160, 128)))
    reports = {}
    for strength in ("0", "0.85"):
        out = tmp_path / f"s{strength}.json"
        assert main(["eval", "--clean", str(clean), "--synthetic-rain", "heavy",
                     "--methods", "rainy,ours", "--correction-strength", strength,
                     "--flip-ensemble", "--json", str(out)]) == 0
        reports[strength] = json.loads(out.read_text())
    none, some = reports["0"], reports["0.85"]
    assert none["correction_strength"] == 0.0 and some["correction_strength"] == 0.85
    assert none["flip_ensemble"] is some["flip_ensemble"] is True
    for key in ("keypoints", "recall", "matching_accuracy"):
        assert none["methods"]["ours"][key] == none["methods"]["rainy"][key]
    assert some["methods"]["ours"]["keypoints"] != some["methods"]["rainy"]["keypoints"]
