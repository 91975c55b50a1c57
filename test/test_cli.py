"""The `siftrain` command line as a user runs it (a separate process)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from siftrain_ros import samples


def siftrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siftrain_ros", *args], capture_output=True,
                          text=True, timeout=600)


def test_extract_writes_npz_with_the_documented_arrays(tmp_path):
    from test_export import make_weights

    frame = samples.tum_frames()[0]
    # --derain on is the default; fresh-net weights stand in for the shipped ones.
    weights = make_weights(tmp_path / "weights")
    result = siftrain("extract", str(frame), "--out", str(tmp_path), "--max-keypoints", "300",
                      "--weights-dir", str(weights), "--backend", "torch", "--scale", "0.5")
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / f"{frame.stem}.npz") as data:
        assert data["xy"].dtype == np.float32 and data["xy"].shape == (300, 2)
        for name in ("size", "angle", "response"):
            assert data[name].dtype == np.float32 and data[name].shape == (300,)
        assert data["octave"].dtype == np.int32
        assert data["descriptors"].dtype == np.uint8 and data["descriptors"].shape == (300, 128)


def test_extract_without_weights_names_the_missing_file(tmp_path):
    frame = samples.tum_frames()[0]
    result = siftrain("extract", str(frame), "--out", str(tmp_path), "--weights-dir",
                      str(tmp_path / "none"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "dprnet_lite.safetensors not found" in line


def test_extract_bad_input_is_one_clear_line(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"nope")
    result = siftrain("extract", str(junk), "--out", str(tmp_path), "--derain", "off")
    assert result.returncode == 2
    assert "not a readable image" in result.stderr and "Traceback" not in result.stderr


def test_bench_json_has_stages_and_opencv(tmp_path):
    out = tmp_path / "bench.json"
    result = siftrain("bench", "--size", "160x120", "--repeats", "1", "--warmup", "0",
                      "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report["stages_ms"]) == {"scale_space", "detection", "orientation", "description"}
    assert report["total_ms"] > 0 and report["opencv_sift_ms"] > 0
    assert report["keypoints"]["ours"] > 0 and report["keypoints"]["opencv"] > 0


def test_rain_level_of_a_folder_and_a_bag_calibrates_the_gate(tmp_path):
    """Dry sample frames measure below the shipped gate, heavy rain in a bag far above it;
    the suggestion lies just above the dry maximum."""
    import shutil

    from siftrain_ros.bags.demo import write_demo_bag
    from siftrain_ros.frontend import DEFAULT_RAIN_GATE

    dry = tmp_path / "dry"
    dry.mkdir()
    for frame in samples.tum_frames()[:2]:
        shutil.copy(frame, dry)
    bag = tmp_path / "rainy_bag"
    write_demo_bag(bag, frames=2, clean=False, rain="heavy")
    out = tmp_path / "levels.json"
    result = siftrain("rain-level", str(dry), str(bag), "--backend", "torch", "--scale", "0.5",
                      "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    dry_summary = report["sources"][str(dry)]["summary"]
    wet_summary = report["sources"][str(bag)]["summary"]
    assert dry_summary["frames"] == 2 and wet_summary["frames"] == 2
    assert dry_summary["max"] < DEFAULT_RAIN_GATE < wet_summary["min"]
    assert dry_summary["max"] < dry_summary["suggested_rain_gate"] <= dry_summary["max"] + 0.5
    assert report["all"]["frames"] == 4


def test_rain_level_of_a_missing_input_is_one_clear_line(tmp_path):
    result = siftrain("rain-level", str(tmp_path / "nowhere"), "--backend", "torch")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no such file, folder or bag" in result.stderr
