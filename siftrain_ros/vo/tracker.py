"""Frame-to-frame tracking: match each frame to the previous one, chain the relative poses.

The world frame is the first frame's camera (optical convention: x right, y down, z forward).
Monocular: each step's translation is a unit direction, chained with a fixed length
``step_length`` (so the position is scale-free: its units are "steps", not metres). A frame
whose pose cannot be estimated is counted as lost and becomes the new reference with the pose
unchanged, so the tracker never stalls on one bad reference frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..sift.features import Features
from .geometry import Intrinsics, PoseConfig, RelativePose, relative_pose
from .matching import MatchConfig, Matches, match_frames


def pose_between(previous: Features, current: Features, intrinsics: Intrinsics,
                 match_config: MatchConfig | None = None,
                 pose_config: PoseConfig | None = None) -> tuple[Matches, RelativePose]:
    """Match two frames' features and estimate the pose of ``current`` in ``previous``.

    Returns:
        (matches, pose): ``pose.ok`` False with a reason when there are too few matches.
    """
    matches = match_frames(previous.descriptors, previous.angle, current.descriptors,
                           current.angle, match_config)
    pose = relative_pose(previous.xy[matches.index_a], current.xy[matches.index_b], intrinsics,
                         pose_config)
    return matches, pose


@dataclass
class TrackResult:
    """What one frame did to the track.

    Attributes:
        tracked: a relative pose was found and chained.
        first: this was the first frame (the reference; no pose to estimate).
        reason: why not tracked (empty when tracked or first).
        pose: (4, 4) float64 T_world_camera after this frame.
        relative: the relative pose estimate (None for the first frame / no intrinsics).
        keypoints: features in this frame; matches: after all filters.
        elapsed_ms: matching + pose time.
    """

    tracked: bool
    first: bool
    reason: str
    pose: np.ndarray
    relative: RelativePose | None
    keypoints: int
    matches: int
    elapsed_ms: float


@dataclass
class FrameTracker:
    """Chains frame-to-frame relative poses into T_world_camera.

    Attributes:
        step_length: length given to each frame's unit translation (scale-free units).
        match_config, pose_config: matching and RANSAC settings.
    """

    step_length: float = 1.0
    match_config: MatchConfig = field(default_factory=MatchConfig)
    pose_config: PoseConfig = field(default_factory=PoseConfig)
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    frames: int = 0
    tracked: int = 0
    lost: int = 0
    _reference: Features | None = None

    def reset(self) -> None:
        """Forget the reference frame and the pose (next frame is a new first frame)."""
        self.pose = np.eye(4)
        self._reference = None

    def track(self, features: Features, intrinsics: Intrinsics | None) -> TrackResult:
        """Add one frame.

        Args:
            features: the frame's keypoints (pixels) and descriptors.
            intrinsics: camera intrinsics; None keeps the frame as reference without a pose
                (counted neither tracked nor lost).

        Returns:
            TrackResult for this frame.
        """
        start = time.perf_counter()
        self.frames += 1
        reference, self._reference = self._reference, features
        if reference is None:
            return TrackResult(False, True, "", self.pose.copy(), None, len(features), 0, 0.0)
        if intrinsics is None:
            return TrackResult(False, False, "no intrinsics", self.pose.copy(), None,
                               len(features), 0, 0.0)
        matches, relative = pose_between(reference, features, intrinsics, self.match_config,
                                         self.pose_config)
        if relative.ok:
            step = np.eye(4)
            step[:3, :3] = relative.rotation
            step[:3, 3] = relative.translation * self.step_length
            self.pose = self.pose @ step
            # Keep R orthonormal despite float drift over long runs (SVD projection).
            u, _, vt = np.linalg.svd(self.pose[:3, :3])
            self.pose[:3, :3] = u @ vt
            self.tracked += 1
        else:
            self.lost += 1
        elapsed = (time.perf_counter() - start) * 1000
        return TrackResult(relative.ok, False, relative.reason, self.pose.copy(), relative,
                           len(features), len(matches), elapsed)
