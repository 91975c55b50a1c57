"""Reusing the large per-frame CPU buffers of the scale space from one frame to the next.

A 640x480 frame needs ~100 MB of pyramid and gradient buffers (the first octave is upsampled
to 1280x960). Fresh allocations of that size come from the kernel page by page on first touch,
and on the development VM that costs as much as the blurs. A stream of same-size frames can
reuse last frame's buffers instead, as soon as nothing refers to them any more.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

import numpy as np

# Entries per (tag, shape): enough for a frame in flight plus one held by a caller.
_MAX_PER_KEY = 2
# (tag, shape) keys kept, least recently used dropped first: a frame uses about six, and a
# stream of ever-changing sizes must not pile up buffers.
_MAX_KEYS = 16
# Smaller buffers are cheap to allocate: not worth holding on to.
MIN_POOLED_BYTES = 1 << 20


class BufferPool:
    """Hands out numpy buffers by (tag, shape), reusing one once no one else references it.

    "No one else" is decided by the reference count: torch tensors made with ``from_numpy``,
    and every view of them, keep the array referenced, so a buffer behind a live pyramid is
    never handed out twice. Thread-safe.
    """

    def __init__(self) -> None:
        self._buffers: OrderedDict[tuple[str, tuple[int, ...]], list[np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tag: str, shape: tuple[int, ...], zero: bool = False) -> tuple[np.ndarray, bool]:
        """A float32 buffer of ``shape`` for ``tag``.

        Args:
            tag: what the buffer is for; a reused buffer holds what its last user of the same
                tag and shape wrote (callers rely on that to skip re-zeroing their padding).
            shape: buffer shape.
            zero: zero a newly allocated buffer.

        Returns:
            (buffer, reused): ``reused`` is True when the buffer comes from an earlier frame.
        """
        if 4 * int(np.prod(shape)) < MIN_POOLED_BYTES:
            return (np.zeros(shape, np.float32) if zero else np.empty(shape, np.float32)), False
        key = (tag, shape)
        with self._lock:
            entries = self._buffers.setdefault(key, [])
            self._buffers.move_to_end(key)
            while len(self._buffers) > _MAX_KEYS:
                self._buffers.popitem(last=False)
            for buffer in entries:
                # References: the list, the loop variable and getrefcount's argument.
                if sys.getrefcount(buffer) == 3:
                    return buffer, True
            buffer = np.zeros(shape, np.float32) if zero else np.empty(shape, np.float32)
            if len(entries) < _MAX_PER_KEY:
                entries.append(buffer)
            return buffer, False

    def clear(self) -> None:
        """Forget every buffer (they stay valid for whoever still holds them)."""
        with self._lock:
            self._buffers.clear()


FRAME_BUFFERS = BufferPool()
