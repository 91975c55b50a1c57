"""Counters, rates and per-stage timings of the node, and their ``/diagnostics`` message.

Written from two threads (executor: received; worker: processed, rejected, timings), read by
the diagnostics timer: one lock, and the timer takes a consistent snapshot.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

RATE_WINDOW_S = 5.0  # rates and mean timings cover the last few seconds


@dataclass
class NodeStats:
    """What the node reports on /diagnostics."""

    received: int = 0
    processed: int = 0
    rejected: int = 0
    dropped: int = 0  # copied from the mailbox
    published_clouds: int = 0
    last_rejection: str = ""
    last_keypoints: int = 0
    last_rain_level: float | None = None  # None: derain off
    gated_dry: int = 0  # frames the rain gate sent through plain SIFT
    _received_at: deque = field(default_factory=lambda: deque(maxlen=1000))
    _processed_at: deque = field(default_factory=lambda: deque(maxlen=1000))
    _timings: deque = field(default_factory=lambda: deque(maxlen=200))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rejected_at_report: int = 0

    def on_received(self) -> None:
        with self._lock:
            self.received += 1
            self._received_at.append(time.monotonic())

    def on_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self.last_rejection = reason

    def on_processed(self, timings_ms: dict[str, float], keypoints: int,
                     rain_level: float | None = None, gated_dry: bool = False) -> None:
        with self._lock:
            self.processed += 1
            self.published_clouds += 1
            self.last_keypoints = keypoints
            self.last_rain_level = rain_level
            self.gated_dry += int(gated_dry)
            now = time.monotonic()
            self._processed_at.append(now)
            self._timings.append((now, dict(timings_ms)))

    @staticmethod
    def _rate(stamps: deque, now: float) -> float:
        recent = [t for t in stamps if now - t <= RATE_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        span = max(recent[-1] - recent[0], 1e-6)
        return (len(recent) - 1) / span

    def snapshot(self) -> dict[str, Any]:
        """Counts, rates (Hz over the last few seconds) and mean stage milliseconds."""
        now = time.monotonic()
        with self._lock:
            timings = [t for stamp, t in self._timings if now - stamp <= RATE_WINDOW_S]
            if not timings and self._timings:
                timings = [self._timings[-1][1]]  # idle input: report the last frame's
            stages: dict[str, list[float]] = {}
            for t in timings:
                for stage, ms in t.items():
                    stages.setdefault(stage, []).append(ms)
            new_rejections = self.rejected - self._rejected_at_report
            self._rejected_at_report = self.rejected
            return {
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_dropped": self.dropped,
                "frames_rejected": self.rejected,
                "new_rejections": new_rejections,
                "input_rate_hz": self._rate(self._received_at, now),
                "output_rate_hz": self._rate(self._processed_at, now),
                "last_keypoints": self.last_keypoints,
                "last_rain_level": self.last_rain_level,
                "frames_gated_dry": self.gated_dry,
                "last_rejection": self.last_rejection,
                "stage_ms": {k: sum(v) / len(v) for k, v in stages.items()},
            }


def diagnostics_message(snapshot: dict[str, Any], name: str, hardware_id: str,
                        stamp: Any, info: dict[str, str], worker_alive: bool) -> Any:
    """A ``diagnostic_msgs/DiagnosticArray`` with one status for the node."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    values = [KeyValue(key=k, value=str(snapshot[k])) for k in (
        "frames_received", "frames_processed", "frames_dropped", "frames_rejected",
        "frames_gated_dry", "last_keypoints")]
    if snapshot["last_rain_level"] is not None:
        values.append(KeyValue(key="last_rain_level", value=f"{snapshot['last_rain_level']:.2f}"))
    values += [KeyValue(key=k, value=f"{snapshot[k]:.2f}")
               for k in ("input_rate_hz", "output_rate_hz")]
    values += [KeyValue(key=f"{stage}_ms", value=f"{ms:.2f}")
               for stage, ms in sorted(snapshot["stage_ms"].items())]
    values += [KeyValue(key=k, value=v) for k, v in info.items()]
    if snapshot["last_rejection"]:
        values.append(KeyValue(key="last_rejection", value=snapshot["last_rejection"]))

    if not worker_alive:
        level, message = DiagnosticStatus.ERROR, "worker thread stopped"
    elif snapshot["new_rejections"]:
        level = DiagnosticStatus.WARN
        message = f"{snapshot['new_rejections']} frame(s) rejected: {snapshot['last_rejection']}"
    elif snapshot["frames_received"] == 0:
        level, message = DiagnosticStatus.OK, "waiting for images"
    else:
        level, message = DiagnosticStatus.OK, (f"{snapshot['output_rate_hz']:.1f} Hz out, "
                              f"{snapshot['frames_dropped']} dropped")
    status = DiagnosticStatus(level=level, name=name, message=message,
                              hardware_id=hardware_id, values=values)
    return DiagnosticArray(header=_header(stamp), status=[status])


def _header(stamp: Any) -> Any:
    from std_msgs.msg import Header

    return Header(stamp=stamp)
