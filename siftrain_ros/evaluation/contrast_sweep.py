"""Recovery metrics along SIFT's contrast threshold: each method's operating characteristic.

Raw recall rewards keypoint count: SIFT on a rainy image finds 2-3x the clean image's
keypoints, many on streaks, and some land near clean keypoints by chance. One threshold per
method (OpenCV's 0.04) compares methods at whatever count each happens to reach. Sweeping the
threshold traces, per method, recall against matching accuracy and keypoint count, so a method
is better when its curve lies above and to the right of the other's, not when it happens to
emit more keypoints at one setting.

A keypoint passes the threshold ``t`` when ``response * n_octave_layers >= t`` (the test in
``sift.detect``), and nothing else in detection, orientation or description depends on ``t``,
so the features at every ``t`` of a sweep are those at its lowest ``t``, filtered by response.
The networks and the scale space run once per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..sift import Features, SiftConfig


def parse_thresholds(text: str) -> tuple[float, ...]:
    """``"0.04,0.02,0.01"`` -> sorted, distinct thresholds (descending).

    Raises:
        ValueError: an entry is not a number or not in (0, 1).
    """
    values = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            value = float(entry)
        except ValueError:
            raise ValueError(f"contrast threshold {entry!r} is not a number") from None
        if not 0.0 < value < 1.0:
            raise ValueError(f"contrast thresholds are in (0, 1) (OpenCV units), got {value}")
        values.append(value)
    if not values:
        raise ValueError("no contrast thresholds given")
    return tuple(sorted(set(values), reverse=True))


def above_contrast(features: Features, threshold: float, n_octave_layers: int) -> Features:
    """The keypoints that SIFT with ``contrast_threshold = threshold`` would have kept.

    Exact for features detected at a threshold <= ``threshold`` with the same other
    parameters: the detector accepts ``|contrast| * n_octave_layers >= threshold`` in float32,
    and ``response`` is that ``|contrast|``.

    Args:
        features: N keypoints, detected at a lower or equal threshold.
        threshold: OpenCV units (intensity in [0, 1]).
        n_octave_layers: the detector's layers per octave.

    Returns:
        The subset, in the same order.
    """
    response = np.asarray(features.response, np.float32)
    keep = response * np.float32(n_octave_layers) >= np.float32(threshold)
    return features.select(np.flatnonzero(keep))


def detection_config(config: SiftConfig, thresholds: Sequence[float]) -> SiftConfig:
    """``config`` with its contrast threshold lowered to the lowest one a sweep needs (its own
    threshold included, so the unswept metrics come from the same features).

    Raises:
        ValueError: a sweep with ``max_keypoints`` set: the strongest N at a low threshold are
            not the strongest N at a higher one, so filtering would not be exact.
    """
    if thresholds and config.max_keypoints:
        raise ValueError("a contrast sweep needs max_keypoints 0 (all keypoints)")
    lowest = min([config.contrast_threshold, *thresholds])
    return replace(config, contrast_threshold=lowest)
