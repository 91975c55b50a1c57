"""Visual-odometry library (fast): feature-cloud helpers, matching filters, relative pose,
tracking, ground-truth poses and the ``siftrain eval-vo`` command on a few frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import siftrain_ros
from siftrain_ros.cli import main as cli_main
from siftrain_ros.sift.features import Features
from siftrain_ros.vo.geometry import (
    Intrinsics,
    PoseConfig,
    direction_angle_deg,
    relative_pose,
    rotation_angle_deg,
)
from siftrain_ros.vo.groundtruth import (
    load_tum,
    matrix_to_quaternion,
    pose_errors,
    quaternion_to_matrix,
    relative_ground_truth,
)
from siftrain_ros.vo.matching import MatchConfig, match_frames, rotation_consistent
from siftrain_ros.vo.tracker import FrameTracker, pose_between

K = Intrinsics(520.9, 521.0, 325.1, 249.7)
SIZE = (640, 480)


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64)
    return cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(degrees))[0]


def _project(points_cam: np.ndarray) -> np.ndarray:
    x = points_cam[:, 0] / points_cam[:, 2] * K.fx + K.cx
    y = points_cam[:, 1] / points_cam[:, 2] * K.fy + K.cy
    return np.stack([x, y], axis=1)


def _scene(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 3D points in front of camera A (metres) and their descriptors (count, 128)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 6.0, count)
    xy = rng.uniform(-0.5, 0.5, (count, 2)) * z[:, None]
    descriptors = rng.integers(0, 256, (count, 128)).astype(np.uint8)
    return np.column_stack([xy, z]), descriptors


def _features(xy: np.ndarray, descriptors: np.ndarray, angle: np.ndarray) -> Features:
    n = len(xy)
    return Features(xy=xy, size=np.full(n, 4.0), angle=np.mod(angle, 360.0),
                    response=np.full(n, 0.05), octave=np.zeros(n), descriptors=descriptors)


def _frame_pair(rotation: np.ndarray, translation: np.ndarray, count: int = 300,
                seed: int = 0, noise_px: float = 0.3) -> tuple[Features, Features]:
    """Features of frames A and B seeing the same points; B's pose in A is (rotation,
    translation): x_A = R x_B + t. Descriptors are consistent (small noise), orientations
    change by a common in-plane rotation, as on a real moving camera."""
    rng = np.random.default_rng(seed + 1)
    points_a, descriptors = _scene(count, seed)
    points_b = (points_a - translation) @ rotation  # R^T (x_A - t), row-wise
    uv_a = _project(points_a) + rng.normal(0, noise_px, (count, 2))
    uv_b = _project(points_b) + rng.normal(0, noise_px, (count, 2))
    noisy = np.clip(descriptors.astype(int) + rng.integers(-3, 4, descriptors.shape), 0, 255)
    angle_a = rng.uniform(0, 360, count)
    return (_features(uv_a, descriptors, angle_a),
            _features(uv_b, noisy.astype(np.uint8), angle_a - 5.0 + rng.normal(0, 1, count)))


# -- feature-cloud helpers --------------------------------------------------------------------

def test_package_helpers_round_trip() -> None:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    a, _ = _frame_pair(np.eye(3), np.array([0.1, 0, 0]), count=50)
    header = Header(stamp=Time(sec=12, nanosec=34), frame_id="cam")
    cloud = siftrain_ros.features_to_cloud(a, header)
    keypoints, descriptors = siftrain_ros.features_from_cloud(cloud)
    assert cloud.header.frame_id == "cam" and cloud.header.stamp.nanosec == 34
    assert len(keypoints) == 50 and descriptors.shape == (50, 128)
    assert descriptors.dtype == np.uint8 and (descriptors == a.descriptors).all()
    assert all(isinstance(k, cv2.KeyPoint) for k in keypoints)
    np.testing.assert_allclose([k.pt for k in keypoints], a.xy, atol=1e-4)
    np.testing.assert_allclose([k.angle for k in keypoints], a.angle, atol=1e-4)
    # And back: keypoints + descriptors -> Features -> cloud gives the same bytes.
    again = siftrain_ros.features_to_cloud(Features.from_cv(keypoints, descriptors), header)
    assert bytes(again.data) == bytes(cloud.data)
    with pytest.raises(AttributeError):
        _ = siftrain_ros.no_such_helper  # type: ignore[attr-defined]


# -- matching ---------------------------------------------------------------------------------

def test_rotation_histogram_keeps_consistent_and_drops_injected() -> None:
    rng = np.random.default_rng(3)
    angle_a = rng.uniform(0, 360, 120)
    consistent = angle_a - 20.0 + rng.normal(0, 1.5, 120)  # delta 20 deg: one bin
    bad_a = rng.uniform(0, 360, 30)
    bad_b = bad_a - rng.uniform(60, 330, 30)  # far from the common rotation
    keep = rotation_consistent(np.r_[angle_a, bad_a], np.r_[consistent, bad_b])
    assert keep[:120].all()
    assert not keep[120:].any()
    assert rotation_consistent(np.zeros(0), np.zeros(0)).shape == (0,)


def test_match_frames_rotation_check_removes_inconsistent_matches() -> None:
    a, b = _frame_pair(_rotation([0, 1, 0], 3), np.array([0.2, 0, 0.05]), count=200)
    # Inject 40 wrong-angle points: identical descriptors (they match) but orientations that
    # do not follow the frame's common rotation.
    rng = np.random.default_rng(7)
    extra = rng.integers(0, 256, (40, 128)).astype(np.uint8)
    extra_xy = rng.uniform(0, 400, (40, 2))
    extra_angle = rng.uniform(0, 360, 40)
    a = _features(np.r_[a.xy, extra_xy], np.r_[a.descriptors, extra], np.r_[a.angle, extra_angle])
    b = _features(np.r_[b.xy, extra_xy + 5], np.r_[b.descriptors, extra],
                  np.r_[b.angle, extra_angle + rng.uniform(90, 270, 40)])
    loose = match_frames(a.descriptors, a.angle, b.descriptors, b.angle,
                         MatchConfig(rotation_check=False))
    strict = match_frames(a.descriptors, a.angle, b.descriptors, b.angle, MatchConfig())
    assert (loose.index_a >= 200).sum() == 40  # all injected matches pass descriptor checks
    assert (strict.index_a >= 200).sum() <= 4  # chance of landing in a kept bin
    assert (strict.index_a < 200).sum() >= 190
    assert (strict.index_a == strict.index_b).all()


# -- relative pose ----------------------------------------------------------------------------

@pytest.mark.parametrize(("axis", "degrees", "translation"), [
    ([0, 1, 0], 4.0, [0.3, 0.0, 0.1]),
    ([1, 0.2, 0], 2.0, [0.0, -0.1, 0.4]),
    ([0.3, 1, 0.1], 8.0, [-0.25, 0.05, 0.0]),
])
@pytest.mark.parametrize(("estimator", "max_rotation", "max_direction"), [
    ("ransac", 0.6, 3.0),  # best minimal sample, no refit: ~0.2-0.4 deg here
    ("usac_accurate", 0.1, 0.6),
])
def test_pipeline_recovers_synthetic_pose(axis: list, degrees: float, translation: list,
                                          estimator: str, max_rotation: float,
                                          max_direction: float) -> None:
    rotation, t = _rotation(axis, degrees), np.array(translation, np.float64)
    a, b = _frame_pair(rotation, t, count=300, seed=int(degrees))
    config = PoseConfig(estimator=estimator)
    matches, pose = pose_between(a, b, K, pose_config=config)
    assert pose.ok, pose.reason
    assert len(matches) >= 280 and pose.inlier_ratio > 0.9
    assert rotation_angle_deg(pose.rotation.T @ rotation) < max_rotation
    assert direction_angle_deg(pose.translation, t) < max_direction
    assert abs(np.linalg.norm(pose.translation) - 1.0) < 1e-9
    # Deterministic: the same inputs give the same answer (seeded RANSAC).
    _, again = pose_between(a, b, K, pose_config=config)
    np.testing.assert_array_equal(again.rotation, pose.rotation)


@pytest.mark.parametrize("count", [0, 1, 5])
def test_too_few_matches_is_no_pose(count: int) -> None:
    a, b = _frame_pair(np.eye(3), np.array([0.2, 0, 0]), count=max(count, 1))
    pose = relative_pose(a.xy[:count], b.xy[:count], K)
    assert not pose.ok and "too few matches" in pose.reason
    assert pose.matches == count and pose.inliers == 0 and pose.inlier_ratio == 0.0
    # Through matching too, including empty frames.
    _, pose = pose_between(a.select(np.arange(count)), b.select(np.arange(count)), K)
    assert not pose.ok
    _, pose = pose_between(Features.empty(), Features.empty(), K)
    assert not pose.ok and pose.matches == 0


def test_random_correspondences_are_rejected() -> None:
    rng = np.random.default_rng(0)
    pose = relative_pose(rng.uniform(0, 640, (40, 2)), rng.uniform(0, 640, (40, 2)), K,
                         PoseConfig(min_inliers=30))
    assert not pose.ok


def test_tracker_chains_poses_and_counts_lost_frames() -> None:
    points, descriptors = _scene(300, 11)
    steps = [(_rotation([0, 1, 0], 2.0), np.array([0.1, 0.0, 0.02]))] * 3
    truth = [np.eye(4)]
    for r, t in steps:
        step = np.eye(4)
        step[:3, :3], step[:3, 3] = r, t
        truth.append(truth[-1] @ step)
    rng = np.random.default_rng(5)
    tracker = FrameTracker(pose_config=PoseConfig(estimator="usac_accurate"))
    results = []
    for i, pose in enumerate(truth):
        in_cam = (points - pose[:3, 3]) @ pose[:3, :3]
        uv = _project(in_cam) + rng.normal(0, 0.2, (300, 2))
        results.append(tracker.track(_features(uv, descriptors, np.full(300, 10.0 - i)), K))
    assert results[0].first and not results[0].tracked
    assert all(r.tracked for r in results[1:]) and tracker.tracked == 3 and tracker.lost == 0
    assert rotation_angle_deg(results[-1].pose[:3, :3].T @ truth[-1][:3, :3]) < 0.3
    # Scale-free: each step has length step_length (1) along the true direction.
    step = np.linalg.inv(results[-2].pose) @ results[-1].pose
    assert abs(np.linalg.norm(step[:3, 3]) - 1.0) < 1e-6
    assert direction_angle_deg(step[:3, 3], steps[-1][1]) < 3.0
    # A frame with nothing to match is lost, becomes the reference, pose unchanged.
    lost = tracker.track(Features.empty(), K)
    assert not lost.tracked and tracker.lost == 1
    np.testing.assert_array_equal(lost.pose, results[-1].pose)
    # No intrinsics: no pose, neither tracked nor lost.
    waiting = tracker.track(Features.empty(), None)
    assert waiting.reason == "no intrinsics" and tracker.lost == 1


# -- ground truth -----------------------------------------------------------------------------

def test_quaternion_round_trip_and_errors() -> None:
    for axis, degrees in (([0, 0, 1], 30), ([1, 1, 0], 179), ([0.2, -1, 0.5], 90)):
        r = _rotation(axis, degrees)
        np.testing.assert_allclose(quaternion_to_matrix(*matrix_to_quaternion(r)), r, atol=1e-9)
    # Unnormalised input (TUM rounds to 4 decimals) still gives a rotation.
    r = quaternion_to_matrix(0.7358, -0.45, 0.2595, -0.4345)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    a, b = np.eye(4), np.eye(4)
    b[:3, :3], b[:3, 3] = _rotation([0, 1, 0], 5), [1, 0, 0]
    rel = relative_ground_truth(a, b)
    a_feat, b_feat = _frame_pair(rel[:3, :3], rel[:3, 3] * 0.3, count=200)
    _, pose = pose_between(a_feat, b_feat, K, pose_config=PoseConfig(estimator="usac_accurate"))
    rotation_error, direction_error = pose_errors(pose, rel)
    assert rotation_error < 0.2 and direction_error < 2.0


def test_load_tum_and_eval_vo_cli(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "tum_fr2_desk"
    times, poses = load_tum(root / "groundtruth_subset.txt")
    assert len(times) > 100 and poses.shape[1:] == (4, 4)
    out = tmp_path / "vo.json"
    code = cli_main(["eval-vo", "--frames", str(root), "--poses",
                     str(root / "groundtruth_subset.txt"), "--associations",
                     str(root / "associations.txt"), "--intrinsics", "520.9,521.0,325.1,249.7",
                     "--methods", "rainy,clean", "--gaps", "1,3", "--limit", "4",
                     "--scale", "0.5", "--json", str(out), "--plot", str(tmp_path / "vo.png")])
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["summary"]) == {"rainy", "clean"}
    clean = report["summary"]["clean"]
    assert clean["1"]["pairs"] == 3 and clean["3"]["pairs"] == 1
    assert clean["all"]["failures"] == 0 and clean["all"]["median_rotation_error_deg"] < 3.0
    assert (tmp_path / "vo.png").stat().st_size > 0


def test_eval_vo_rain_gate_above_every_frame_makes_ours_plain_sift(shared_data: Path,
                                                                   tmp_path: Path) -> None:
    root = shared_data / "tum_fr2_desk"
    out = tmp_path / "vo.json"
    code = cli_main(["eval-vo", "--frames", str(root), "--poses",
                     str(root / "groundtruth_subset.txt"), "--associations",
                     str(root / "associations.txt"), "--intrinsics", "520.9,521.0,325.1,249.7",
                     "--rain-preset", "light", "--methods", "rainy,ours", "--gaps", "1",
                     "--limit", "3", "--scale", "0.5", "--rain-gate", "255", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["rain_gate"] == 255
    assert report["keypoints_mean"]["ours"] == report["keypoints_mean"]["rainy"]
    assert report["summary"]["ours"] == report["summary"]["rainy"]


def test_eval_vo_contrast_threshold_reaches_every_method(shared_data: Path,
                                                          tmp_path: Path) -> None:
    root = shared_data / "tum_fr2_desk"
    args = ["eval-vo", "--frames", str(root), "--poses", str(root / "groundtruth_subset.txt"),
            "--associations", str(root / "associations.txt"),
            "--intrinsics", "520.9,521.0,325.1,249.7", "--methods", "rainy,clean",
            "--gaps", "1", "--limit", "3", "--scale", "0.5"]
    counts = {}
    for threshold in ("0.04", "0.08"):
        out = tmp_path / f"vo{threshold}.json"
        assert cli_main([*args, "--contrast-threshold", threshold, "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["contrast_threshold"] == float(threshold)
        counts[threshold] = report["keypoints_mean"]
    for method in ("rainy", "clean"):
        assert counts["0.08"][method] < counts["0.04"][method]
    assert cli_main([*args, "--contrast-threshold", "-1"]) == 2
