"""The contrast-threshold sweep of `siftrain eval`: filtering features detected at a low
threshold gives exactly what SIFT detects at a higher one, and the sweep's rows agree with
the main tables."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from siftrain_ros import samples
from siftrain_ros.cli import main
from siftrain_ros.evaluation.contrast_sweep import (
    above_contrast,
    detection_config,
    parse_thresholds,
)
from siftrain_ros.evaluation.recovery import evaluate
from siftrain_ros.rain import RainParams, add_rain
from siftrain_ros.sift import Sift, SiftConfig, read_gray


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    clean = read_gray(samples.tum_frames()[0])[80:240, 160:400]
    return add_rain(clean, seed=4, params=RainParams.preset("heavy")), clean


@pytest.mark.parametrize("high", [0.02, 0.04, 0.08])
def test_filtering_a_low_threshold_equals_detecting_at_a_high_one(
        pair: tuple[np.ndarray, np.ndarray], high: float) -> None:
    rainy, _ = pair
    low = Sift(SiftConfig(contrast_threshold=0.01))(rainy)
    direct = Sift(SiftConfig(contrast_threshold=high))(rainy)
    filtered = above_contrast(low, high, SiftConfig().n_octave_layers)
    assert 0 < len(direct) < len(low)
    assert len(filtered) == len(direct)
    np.testing.assert_array_equal(filtered.xy, direct.xy)
    np.testing.assert_array_equal(filtered.descriptors, direct.descriptors)


def test_parse_thresholds_and_detection_config() -> None:
    assert parse_thresholds("0.01, 0.04,0.02,0.04") == (0.04, 0.02, 0.01)
    for bad in ("", "0.04,x", "0", "1.5"):
        with pytest.raises(ValueError):
            parse_thresholds(bad)
    assert detection_config(SiftConfig(), (0.02, 0.01)).contrast_threshold == 0.01
    # The main tables' own threshold is always detected, even when the sweep starts above it.
    assert detection_config(SiftConfig(), (0.08,)).contrast_threshold == 0.04
    with pytest.raises(ValueError, match="max_keypoints"):
        detection_config(SiftConfig(max_keypoints=500), (0.02,))


def test_sweep_rows_agree_with_the_main_metrics(pair: tuple[np.ndarray, np.ndarray]) -> None:
    rainy, clean = pair
    images = [("a", rainy, clean)]
    plain = evaluate(images, ["rainy", "clean"])
    swept = evaluate(images, ["rainy", "clean"], contrast_thresholds=(0.01, 0.04, 0.02))
    # Detecting at 0.01 and filtering leaves the 0.04 tables exactly as they were.
    assert swept["methods"] == plain["methods"]
    rows = swept["contrast_sweep"]["rainy"]
    assert [r["contrast_threshold"] for r in rows] == [0.04, 0.02, 0.01]
    assert "clean" not in swept["contrast_sweep"]
    assert {k: v for k, v in rows[0].items() if k != "contrast_threshold"} == \
        plain["methods"]["rainy"]
    counts = [r["keypoints"] for r in rows]
    recalls = [r["recall"] for r in rows]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert recalls == sorted(recalls)


def test_sweep_reaches_the_derained_front_end(pair: tuple[np.ndarray, np.ndarray]) -> None:
    """ours detects at the sweep's lowest threshold too (the front end gets the detection
    config), and its 0.04 row is the unswept one."""
    rainy, clean = pair
    images = [("a", rainy, clean)]
    plain = evaluate(images, ["ours", "clean"])
    swept = evaluate(images, ["ours", "clean"], contrast_thresholds=(0.04, 0.01))
    assert swept["methods"]["ours"] == plain["methods"]["ours"]
    high, low = swept["contrast_sweep"]["ours"]
    assert high["keypoints"] == plain["methods"]["ours"]["keypoints"] < low["keypoints"]


def test_cli_sweep_table_json_and_plot(tmp_path: Path, pair: tuple[np.ndarray, np.ndarray],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rainy, clean = pair
    for name, image in (("rain", rainy), ("norain", clean)):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "frame1.png"), image)
    out, plot = tmp_path / "s.json", tmp_path / "s.png"
    args = ["eval", "--rainy", str(tmp_path / "rain"), "--clean", str(tmp_path / "norain"),
            "--methods", "rainy,clean"]
    assert main([*args, "--contrast-thresholds", "0.04,0.02", "--json", str(out),
                 "--sweep-plot", str(plot)]) == 0
    assert "Along SIFT's contrast threshold" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [r["contrast_threshold"] for r in report["contrast_sweep"]["rainy"]] == [0.04, 0.02]
    assert plot.stat().st_size > 0
    assert main([*args, "--sweep-plot", str(plot)]) == 2
    with pytest.raises(SystemExit):
        main([*args, "--contrast-thresholds", "0.04,zero"])
