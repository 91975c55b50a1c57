"""The debug image: keypoints drawn over the input frame (rich keypoints: size and angle)."""

from __future__ import annotations

import cv2
import numpy as np

from ..sift import Features


def draw_keypoints(gray: np.ndarray, features: Features) -> np.ndarray:
    """(H, W, 3) uint8 BGR of ``gray`` with each keypoint as a circle of its size and a radius
    line at its angle, in input pixels (what the feature cloud carries)."""
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    canvas = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    keypoints = [cv2.KeyPoint(float(x), float(y), float(s), float(a))
                 for (x, y), s, a in zip(features.xy.tolist(), features.size.tolist(),
                                         features.angle.tolist(), strict=True)]
    return cv2.drawKeypoints(canvas, keypoints, canvas, color=(0, 255, 0),
                             flags=cv2.DRAW_MATCHES_FLAGS_DRAW_OVER_OUTIMG
                             | cv2.DRAW_MATCHES_FLAGS_DRAW_RICH_KEYPOINTS)
