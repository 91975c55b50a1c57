"""Pairing keypoints by position and matching descriptors, with OpenCV doing the heavy lifting."""

from __future__ import annotations

import cv2
import numpy as np


def nearest_neighbours(query: np.ndarray, reference: np.ndarray, chunk: int = 2048
                       ) -> tuple[np.ndarray, np.ndarray]:
    """For each query point, the nearest reference point.

    Args:
        query: (N, 2) positions in pixels.
        reference: (M, 2) positions in pixels.

    Returns:
        distance: (N,) pixels (inf when ``reference`` is empty); index: (N,) into ``reference``
        (-1 when empty).
    """
    query = np.asarray(query, np.float64).reshape(-1, 2)
    reference = np.asarray(reference, np.float64).reshape(-1, 2)
    if len(reference) == 0:
        return np.full(len(query), np.inf), np.full(len(query), -1, np.int64)
    distance = np.empty(len(query))
    index = np.empty(len(query), np.int64)
    for start in range(0, len(query), chunk):
        block = query[start: start + chunk]
        d2 = ((block[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
        index[start: start + chunk] = d2.argmin(1)
        distance[start: start + chunk] = np.sqrt(d2.min(1))
    return distance, index


def ratio_matches(descriptors_a: np.ndarray, descriptors_b: np.ndarray, ratio: float = 0.8
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Lowe-ratio nearest-neighbour matches (L2) from A to B.

    Args:
        descriptors_a: (N, 128) uint8 or float.
        descriptors_b: (M, 128) uint8 or float.

    Returns:
        index_a, index_b: (K,) matched indices.
    """
    if len(descriptors_a) == 0 or len(descriptors_b) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = matcher.knnMatch(np.float32(descriptors_a), np.float32(descriptors_b), k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    return (np.array([m.queryIdx for m in good], np.int64),
            np.array([m.trainIdx for m in good], np.int64))


def project(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points."""
    points = np.asarray(points, np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(points, np.asarray(homography, np.float64)).reshape(-1, 2)


def homography_inlier_share(xy_a: np.ndarray, xy_b: np.ndarray, index_a: np.ndarray,
                            index_b: np.ndarray, homography: np.ndarray,
                            tolerance: float = 3.0) -> float:
    """Share of matches whose A point, mapped by the ground-truth homography, lands within
    ``tolerance`` pixels of its B point (0 when there are no matches)."""
    if len(index_a) == 0:
        return 0.0
    error = np.linalg.norm(project(xy_a[index_a], homography) - xy_b[index_b], axis=1)
    return float((error < tolerance).mean())


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute circular difference of angles in degrees, in [0, 180]."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) % 360.0
    return np.minimum(d, 360.0 - d)
