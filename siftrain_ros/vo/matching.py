"""Frame-to-frame descriptor matching for SIFT, the way an ORB-SLAM-style tracker does it.

Three filters, each optional: Lowe's ratio test on the two nearest neighbours (L2, since SIFT
descriptors are real-valued: Hamming is for binary ORB descriptors), a mutual (cross) check, and
ORB-SLAM's rotation-consistency histogram: between two frames of a moving camera, the keypoint
orientations of true matches change by about the same in-plane rotation, so matches whose
angle difference falls outside the most populated histogram bins are outliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MatchConfig:
    """Attributes:
        ratio: Lowe ratio (best / second-best L2 distance must be below it); 1 disables.
        mutual: keep a match only if B's best match in A is the same point.
        rotation_check: apply the rotation-consistency histogram.
        histogram_bins: bins over 360 degrees (ORB-SLAM: HISTO_LENGTH = 30, i.e. 12 degrees).
        keep_bins: most populated bins kept (ORB-SLAM: 3).
        min_bin_share: a 2nd/3rd bin is kept only with at least this share of the top bin's
            count (ORB-SLAM's ComputeThreeMaxima uses 0.1).
    """

    ratio: float = 0.8
    mutual: bool = True
    rotation_check: bool = True
    histogram_bins: int = 30
    keep_bins: int = 3
    min_bin_share: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio}")
        if self.histogram_bins < 1 or not 1 <= self.keep_bins <= self.histogram_bins:
            raise ValueError(f"need 1 <= keep_bins <= histogram_bins, got {self.keep_bins}, "
                             f"{self.histogram_bins}")


@dataclass
class Matches:
    """K matches between frame A and frame B.

    Attributes:
        index_a: (K,) int64 indices into A's features.
        index_b: (K,) int64 indices into B's features.
        distance: (K,) float32 L2 descriptor distances (OpenCV uint8 scaling, 0..~512).
    """

    index_a: np.ndarray
    index_b: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.index_a)

    def select(self, keep: np.ndarray) -> Matches:
        """Subset by boolean mask or indices."""
        return Matches(self.index_a[keep], self.index_b[keep], self.distance[keep])

    @classmethod
    def empty(cls) -> Matches:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))


def rotation_consistent(angle_a: np.ndarray, angle_b: np.ndarray, bins: int = 30,
                        keep_bins: int = 3, min_bin_share: float = 0.1) -> np.ndarray:
    """ORB-SLAM's rotation-consistency check on matched keypoint orientations.

    Args:
        angle_a: (K,) degrees, orientation of each match's keypoint in A.
        angle_b: (K,) degrees, orientation of the matching keypoint in B.
        bins: histogram bins over [0, 360).
        keep_bins: the most populated bins to keep.
        min_bin_share: bins after the first are kept only with at least this share of the
            first bin's count (so a flat histogram does not keep random outliers).

    Returns:
        (K,) bool mask of the matches to keep (all False when K == 0).
    """
    angle_a = np.asarray(angle_a, np.float64).reshape(-1)
    angle_b = np.asarray(angle_b, np.float64).reshape(-1)
    if len(angle_a) == 0:
        return np.zeros(0, bool)
    # ORB-SLAM: rot = angle1 - angle2 wrapped to [0, 360), bin = rot * bins / 360. (Its code
    # multiplies by 1/bins instead, a known slip that uses only a few bins; we bin as intended.)
    rotation = np.mod(angle_a - angle_b, 360.0)
    index = np.minimum((rotation * bins / 360.0).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    order = np.argsort(-counts, kind="stable")[:keep_bins]
    top = counts[order[0]]
    kept = [order[0]] + [b for b in order[1:] if counts[b] > 0
                         and counts[b] >= min_bin_share * top]
    return np.isin(index, kept)


def match_descriptors(descriptors_a: np.ndarray, descriptors_b: np.ndarray,
                      ratio: float = 0.8, mutual: bool = True) -> Matches:
    """Nearest-neighbour matches from A to B with L2 (``cv2.BFMatcher``).

    Args:
        descriptors_a: (N, 128) uint8 or float32 SIFT descriptors of frame A.
        descriptors_b: (M, 128) uint8 or float32 SIFT descriptors of frame B.
        ratio: Lowe ratio test threshold (1 disables it; needs M >= 2 otherwise).
        mutual: also require A's point to be B's point's nearest neighbour.

    Returns:
        Matches sorted by A index; empty if either side is empty (or M < 2 with a ratio < 1).
    """
    a = np.ascontiguousarray(descriptors_a, np.float32).reshape(-1, 128)
    b = np.ascontiguousarray(descriptors_b, np.float32).reshape(-1, 128)
    if len(a) == 0 or len(b) == 0 or (ratio < 1.0 and len(b) < 2):
        return Matches.empty()
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    k = 2 if ratio < 1.0 else 1
    pairs = matcher.knnMatch(a, b, k=k)
    index_a, index_b, distance = [], [], []
    for candidates in pairs:
        if not candidates:
            continue
        best = candidates[0]
        if k == 2 and (len(candidates) < 2 or best.distance >= ratio * candidates[1].distance):
            continue
        index_a.append(best.queryIdx)
        index_b.append(best.trainIdx)
        distance.append(best.distance)
    matches = Matches(np.array(index_a, np.int64), np.array(index_b, np.int64),
                      np.array(distance, np.float32))
    if mutual and len(matches):
        back = matcher.match(b, a)  # B -> A nearest neighbour for every B point
        best_in_a = np.full(len(b), -1, np.int64)
        for m in back:
            best_in_a[m.queryIdx] = m.trainIdx
        matches = matches.select(best_in_a[matches.index_b] == matches.index_a)
    return matches


def match_frames(descriptors_a: np.ndarray, angle_a: np.ndarray, descriptors_b: np.ndarray,
                 angle_b: np.ndarray, config: MatchConfig | None = None) -> Matches:
    """Matches between two frames: ratio + mutual L2 matching, then the rotation histogram.

    Args:
        descriptors_a, descriptors_b: (N, 128) / (M, 128) SIFT descriptors.
        angle_a, angle_b: (N,) / (M,) keypoint orientations in degrees (cv::KeyPoint).
        config: filters (defaults: ratio 0.8, mutual, 30-bin rotation check keeping 3 bins).
    """
    config = config or MatchConfig()
    matches = match_descriptors(descriptors_a, descriptors_b, config.ratio, config.mutual)
    if config.rotation_check and len(matches):
        keep = rotation_consistent(np.asarray(angle_a)[matches.index_a],
                                   np.asarray(angle_b)[matches.index_b], config.histogram_bins,
                                   config.keep_bins, config.min_bin_share)
        matches = matches.select(keep)
    return matches
