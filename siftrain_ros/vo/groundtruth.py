"""Ground-truth poses (TUM and KITTI formats) and relative-pose errors against them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .geometry import RelativePose, direction_angle_deg, rotation_angle_deg


def quaternion_to_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    """(3, 3) rotation of a quaternion, normalised first (TUM files round to 4 decimals)."""
    q = np.array([qw, qx, qy, qz], np.float64)
    norm = np.linalg.norm(q)
    if norm == 0:
        raise ValueError("zero quaternion")
    w, x, y, z = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _data_lines(path: Path) -> list[list[str]]:
    rows = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.replace(",", " ").split())
    return rows


def load_tum(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """TUM trajectory ``t tx ty tz qx qy qz qw`` (camera-to-world).

    Returns:
        (times (P,) float64 seconds, poses (P, 4, 4) float64 T_world_camera).

    Raises:
        ValueError: a row without 8 numbers, or no rows.
    """
    times, poses = [], []
    for row in _data_lines(path):
        if len(row) != 8:
            raise ValueError(f"{path}: TUM rows have 8 numbers, got {' '.join(row)!r}")
        t, tx, ty, tz, qx, qy, qz, qw = map(float, row)
        pose = np.eye(4)
        pose[:3, :3] = quaternion_to_matrix(qx, qy, qz, qw)
        pose[:3, 3] = (tx, ty, tz)
        times.append(t)
        poses.append(pose)
    if not poses:
        raise ValueError(f"{path}: no poses")
    return np.array(times), np.array(poses)


def load_kitti(path: Path) -> np.ndarray:
    """KITTI poses: one row-major 3x4 T_world_camera (12 numbers) per line, one line per frame.

    Returns:
        (P, 4, 4) float64.
    """
    poses = []
    for row in _data_lines(path):
        if len(row) != 12:
            raise ValueError(f"{path}: KITTI rows have 12 numbers, got {len(row)}")
        pose = np.eye(4)
        pose[:3, :4] = np.array(row, np.float64).reshape(3, 4)
        poses.append(pose)
    if not poses:
        raise ValueError(f"{path}: no poses")
    return np.array(poses)


def nearest_poses(times: np.ndarray, poses: np.ndarray, query: np.ndarray,
                  max_dt: float = 0.02) -> np.ndarray:
    """The pose nearest in time to each query time.

    Raises:
        ValueError: a query time further than ``max_dt`` seconds from every pose.
    """
    index = np.clip(np.searchsorted(times, query), 1, len(times) - 1)
    before = np.abs(query - times[index - 1]) <= np.abs(query - times[index])
    index = np.where(before, index - 1, index)
    dt = np.abs(times[index] - query)
    if (dt > max_dt).any():
        worst = int(np.argmax(dt))
        raise ValueError(f"no ground-truth pose within {max_dt} s of t={query[worst]:.6f} "
                         f"(nearest {dt[worst]:.3f} s away)")
    return poses[index]


def relative_ground_truth(pose_a: np.ndarray, pose_b: np.ndarray) -> np.ndarray:
    """(4, 4) T_A_B = inv(T_world_A) @ T_world_B."""
    return np.linalg.inv(pose_a) @ pose_b


def pose_errors(estimate: RelativePose, truth: np.ndarray) -> tuple[float, float]:
    """(rotation error, translation-direction error) in degrees of an estimated T_A_B.

    Rotation error: angle of R_est^T R_true. Direction error: angle between the unit
    translations (nan when the true translation is zero). Both nan when ``estimate`` is not ok.
    """
    if not estimate.ok:
        return float("nan"), float("nan")
    rotation = rotation_angle_deg(estimate.rotation.T @ truth[:3, :3])
    direction = direction_angle_deg(estimate.translation, truth[:3, 3])
    return rotation, direction


def matrix_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(qx, qy, qz, qw) of a (3, 3) rotation, qw >= 0 (Shepperd's method: stable near 180°)."""
    m = np.asarray(rotation, np.float64)
    trace = float(np.trace(m))
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        v = np.zeros(3)
        v[i] = s / 4
        v[j] = (m[j, i] + m[i, j]) / s
        v[k] = (m[k, i] + m[i, k]) / s
        q = (v[0], v[1], v[2], (m[k, j] - m[j, k]) / s)
    qa = np.array(q, np.float64)
    qa /= np.linalg.norm(qa)
    if qa[3] < 0:
        qa = -qa
    return float(qa[0]), float(qa[1]), float(qa[2]), float(qa[3])
