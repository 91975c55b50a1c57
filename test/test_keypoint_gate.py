"""The per-keypoint rain gate: keypoints from the frame where DPRNet found no rain."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from siftrain_ros import samples
from siftrain_ros.evaluation.recovery import recovery_metrics
from siftrain_ros.frontend import DerainOutput, FeatureFrontEnd, FrontEndConfig, TorchBackend
from siftrain_ros.frontend.keypoint_gate import correction_map, merge_by_correction
from siftrain_ros.rain import RainParams, add_rain
from siftrain_ros.sift import ScaleSpaceKeypoints, SiftConfig

SIZE = (320, 240)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    gray = cv2.imread(str(samples.tum_frames()[0]), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(gray, SIZE, interpolation=cv2.INTER_AREA)


def _keypoints(octave: list[int], row: list[int], col: list[int]) -> ScaleSpaceKeypoints:
    n = len(octave)
    return ScaleSpaceKeypoints(
        octave=torch.tensor(octave), layer=torch.ones(n, dtype=torch.int64),
        row=torch.tensor(row), col=torch.tensor(col), offset=torch.zeros(n, 3),
        response=torch.full((n,), 0.05), angle=torch.full((n,), float("nan")))


def test_merge_takes_the_frame_where_dry_and_the_derained_image_where_wet() -> None:
    config = SiftConfig()  # octave 0 is the 2x upsampled image (x = col / 2), octave 1 x = col
    correction = torch.zeros(40, 60)
    correction[:, 30:] = 20.0  # the net took out rain in the right half
    # Image positions x = 10 (dry), 40 (wet), and 40 on octave 1 (wet).
    frame_kps = _keypoints([0, 0, 1], [20, 20, 10], [20, 80, 40])
    derained_kps = _keypoints([0, 0, 1], [30, 30, 12], [20, 80, 40])
    merged = merge_by_correction(frame_kps, derained_kps, correction, 8.0, config)
    assert merged.row.tolist() == [20, 30, 12]
    assert merged.col.tolist() == [20, 80, 40]
    assert merged.image_xy(config.first_octave)[:, 0].tolist() == [10.0, 40.0, 40.0]
    with pytest.raises(ValueError, match="threshold"):
        merge_by_correction(frame_kps, derained_kps, correction, 0.0, config)


def test_correction_map_is_the_local_mean_absolute_correction() -> None:
    frame = torch.full((1, 1, 32, 32), 100.0)
    torch.testing.assert_close(correction_map(frame, frame - 12.0), torch.full((32, 32), 12.0))
    streak = frame.clone()
    streak[..., 16, :] -= 60.0
    local = correction_map(frame, streak)
    assert float(local[16].mean()) > 5 * float(local[2].mean())


class _OffsetBackend:
    """The networks' interface with a known output: the frame plus ``offset`` gray levels."""

    name = "offset"
    device = torch.device("cpu")

    def __init__(self, offset: float):
        self.offset = offset / 255.0

    def __call__(self, image: torch.Tensor) -> DerainOutput:
        out = (image + self.offset).clamp(0, 1)
        return DerainOutput(detect=out, describe=out)


def test_no_correction_gives_plain_sift_and_a_strong_one_the_derained_features(
        frame: np.ndarray) -> None:
    plain = FeatureFrontEnd(FrontEndConfig(derain=False))(frame).features
    untouched = FeatureFrontEnd(FrontEndConfig(keypoint_rain_gate=8.0), _OffsetBackend(0.0))
    same = untouched(frame).features
    np.testing.assert_array_equal(same.xy, plain.xy)
    np.testing.assert_array_equal(same.descriptors, plain.descriptors)
    # 20 gray levels everywhere is above the gate: every keypoint is DPRNet's (mid-gray frame,
    # so that no pixel clips and the correction is 20 everywhere).
    backend = _OffsetBackend(20.0)
    mid = (frame * 0.5 + 64).astype(np.uint8)
    gated = FeatureFrontEnd(FrontEndConfig(keypoint_rain_gate=8.0), backend)(mid).features
    derained = FeatureFrontEnd(FrontEndConfig(), backend)(mid).features
    assert len(derained) > 100
    np.testing.assert_array_equal(gated.xy, derained.xy)
    np.testing.assert_array_equal(gated.descriptors, derained.descriptors)


def test_shipped_nets_with_the_gate_keep_a_dry_frame_and_still_derain_heavy_rain(
        shipped_backend: TorchBackend, frame: np.ndarray) -> None:
    plain = FeatureFrontEnd(FrontEndConfig(derain=False))(frame).features
    nets = FeatureFrontEnd(FrontEndConfig(), shipped_backend)
    gated = FeatureFrontEnd(FrontEndConfig(keypoint_rain_gate=8.0), shipped_backend)
    # Dry: the nets alone lose some of the frame's keypoints; the gate gives them back.
    alone = recovery_metrics(nets(frame).features, plain)
    kept = recovery_metrics(gated(frame).features, plain)
    assert kept.recall > 0.97 and kept.recall > alone.recall + 0.03, (kept, alone)
    # Heavy rain: DPRNet corrects nearly everywhere, so the keypoints are mostly its own.
    rainy = add_rain(frame, seed=0, params=RainParams.preset("heavy"))
    wet_nets, wet_gated = nets(rainy).features, gated(rainy).features
    shared = recovery_metrics(wet_gated, wet_nets)
    assert shared.precision > 0.9, shared


@pytest.mark.parametrize("gate", [-1.0, 256.0, float("nan")])
def test_keypoint_rain_gate_outside_gray_levels_is_refused(gate: float) -> None:
    with pytest.raises(ValueError, match="keypoint_rain_gate"):
        FrontEndConfig(keypoint_rain_gate=gate)


def test_the_node_and_the_command_line_run_the_gate_by_default() -> None:
    import argparse

    from siftrain_ros.frontend import DEFAULT_KEYPOINT_RAIN_GATE
    from siftrain_ros.frontend.arguments import add_frontend_arguments, recovery_options
    from siftrain_ros.node.params import PARAMS

    parser = argparse.ArgumentParser()
    add_frontend_arguments(parser)
    options = recovery_options(parser.parse_args([]))
    assert options["keypoint_rain_gate"] == DEFAULT_KEYPOINT_RAIN_GATE == 8.0
    node_defaults = {spec.name: spec.default for spec in PARAMS}
    assert node_defaults["keypoint_rain_gate"] == DEFAULT_KEYPOINT_RAIN_GATE
