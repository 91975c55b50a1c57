"""Relative-pose evaluation of feature methods on an image sequence with ground-truth poses.

Protocol (docs/odometry.md): for every gap g and every frame pair (i, i + g), match the two
frames' features (``match_frames``), estimate the essential matrix and pose (``relative_pose``)
and compare with the ground truth: rotation error and translation-direction error in degrees,
inliers and inlier ratio. Methods: ``clean`` (SIFT on the clean frames: upper bound), ``rainy``
(plain SIFT on frames with synthetic rain, a different seed per frame) and ``ours`` (the front
end with the shipped DPRNet/GGIRNet on the same rainy frames). Features are computed once per
frame and method, then reused by every pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..sift.features import Features
from .geometry import Intrinsics, PoseConfig
from .groundtruth import load_kitti, load_tum, nearest_poses, pose_errors, relative_ground_truth
from .matching import MatchConfig
from .tracker import pose_between

METHODS = ("rainy", "ours", "clean")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff")


@dataclass
class Sequence:
    """Frames and their ground-truth poses.

    Attributes:
        frames: image paths in time order.
        poses: (F, 4, 4) float64 T_world_camera of each frame.
    """

    frames: list[Path]
    poses: np.ndarray


def _resolve(frames_dir: Path, name: str, associations: Path | None) -> Path:
    """An association's file name: relative to the frames folder, its parent, or by base name."""
    candidates = [frames_dir / name, frames_dir / Path(name).name]
    if associations is not None:
        candidates.append(associations.parent / name)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"frame {name!r} not found in {frames_dir}")


def load_sequence(frames_dir: Path, poses_file: Path, fmt: str = "tum",
                  associations: Path | None = None, max_dt: float = 0.02) -> Sequence:
    """Frames plus poses.

    tum: with ``associations`` (lines ``rgb_time rgb_file [...]``, TUM's associate.py output)
    the listed frames, else every image in ``frames_dir`` named by its timestamp; each frame
    gets the ground-truth pose nearest in time (within ``max_dt`` s). kitti: the sorted images
    of ``frames_dir``, pose i for frame i.

    Raises:
        ValueError / FileNotFoundError: unreadable or inconsistent inputs.
    """
    if not frames_dir.is_dir():
        raise FileNotFoundError(f"{frames_dir}: no such folder")
    if not poses_file.is_file():
        raise FileNotFoundError(f"{poses_file}: no such file")
    if fmt == "kitti":
        frames = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        poses = load_kitti(poses_file)
        if len(poses) < len(frames):
            raise ValueError(f"{len(frames)} frames but only {len(poses)} KITTI poses")
        return Sequence(frames, poses[: len(frames)])
    if fmt != "tum":
        raise ValueError(f"format must be tum or kitti, got {fmt!r}")
    if associations is not None:
        rows = [line.split() for line in associations.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        frames = [_resolve(frames_dir, row[1], associations) for row in rows]
        stamps = np.array([float(row[0]) for row in rows])
    else:
        frames = sorted((p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                        key=lambda p: float(p.stem))
        stamps = np.array([float(p.stem) for p in frames])
    if not frames:
        raise ValueError(f"no frames in {frames_dir}")
    times, poses = load_tum(poses_file)
    return Sequence(frames, nearest_poses(times, poses, stamps, max_dt))


def frame_pairs(count: int, gaps: list[int]) -> list[tuple[int, int, int]]:
    """(gap, i, i + gap) for every gap and every i with i + gap < count."""
    return [(gap, i, i + gap) for gap in gaps for i in range(count - gap)]


def evaluate_pairs(features: dict[str, list[Features]], poses: np.ndarray, gaps: list[int],
                   intrinsics: Intrinsics, match_config: MatchConfig | None = None,
                   pose_config: PoseConfig | None = None) -> dict:
    """Relative-pose errors for every method, gap and pair.

    Args:
        features: method -> per-frame features (same frame order as ``poses``).
        poses: (F, 4, 4) T_world_camera ground truth.
        gaps: frame gaps to evaluate.

    Returns:
        ``{"pairs": {method: [row]}, "summary": {method: {gap: stats}}}``; a row has gap, a, b,
        ok, matches, inliers, inlier_ratio, rotation_error_deg, translation_error_deg, and the
        ground-truth rotation_deg / translation (length, input units); stats are pairs,
        failures, median/mean rotation and translation-direction errors (over successful
        pairs), mean matches, inliers and inlier ratio (failures count as 0 inliers).
    """
    pairs_out: dict[str, list[dict]] = {}
    summary: dict[str, dict[str, dict]] = {}
    for method, per_frame in features.items():
        rows = []
        for gap, a, b in frame_pairs(len(per_frame), gaps):
            matches, pose = pose_between(per_frame[a], per_frame[b], intrinsics, match_config,
                                         pose_config)
            truth = relative_ground_truth(poses[a], poses[b])
            rotation_error, direction_error = pose_errors(pose, truth)
            rows.append({
                "gap": gap, "a": a, "b": b, "ok": pose.ok, "reason": pose.reason,
                "matches": len(matches), "inliers": pose.inliers,
                "inlier_ratio": pose.inlier_ratio, "rotation_error_deg": rotation_error,
                "translation_error_deg": direction_error,
                "true_rotation_deg": float(np.degrees(np.arccos(np.clip(
                    (np.trace(truth[:3, :3]) - 1) / 2, -1, 1)))),
                "true_translation": float(np.linalg.norm(truth[:3, 3])),
            })
        pairs_out[method] = rows
        summary[method] = {str(gap): summarise([r for r in rows if r["gap"] == gap])
                           for gap in gaps}
        summary[method]["all"] = summarise(rows)
    return {"pairs": pairs_out, "summary": summary}


def summarise(rows: list[dict]) -> dict:
    """Statistics of pair rows (see ``evaluate_pairs``)."""
    ok = [r for r in rows if r["ok"]]

    def stat(key: str, fn: Callable[[np.ndarray], float]) -> float:
        values = np.array([r[key] for r in ok], np.float64)
        values = values[np.isfinite(values)]
        return float(fn(values)) if len(values) else float("nan")

    return {
        "pairs": len(rows), "failures": len(rows) - len(ok),
        "median_rotation_error_deg": stat("rotation_error_deg", np.median),
        "mean_rotation_error_deg": stat("rotation_error_deg", np.mean),
        "median_translation_error_deg": stat("translation_error_deg", np.median),
        "mean_translation_error_deg": stat("translation_error_deg", np.mean),
        "mean_matches": float(np.mean([r["matches"] for r in rows])) if rows else 0.0,
        "mean_inliers": float(np.mean([r["inliers"] for r in rows])) if rows else 0.0,
        "mean_inlier_ratio": float(np.mean([r["inlier_ratio"] for r in rows])) if rows else 0.0,
    }
