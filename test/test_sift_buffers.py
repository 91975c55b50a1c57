"""Frame buffers are reused only when nothing refers to them any more."""

from __future__ import annotations

import numpy as np
import torch

from siftrain_ros import samples
from siftrain_ros.sift import SiftConfig, build_scale_space, gradient_pyramid, read_gray
from siftrain_ros.sift.buffers import BufferPool
from siftrain_ros.sift.image import as_tensor, to_gray_float

BIG = (512, 1024)  # 2 MB: above the pooling threshold


def test_released_buffer_is_reused_and_held_one_is_not() -> None:
    pool = BufferPool()
    first, reused = pool.get("a", BIG)
    assert not reused
    held = torch.from_numpy(first)[10:20]  # a view of a tensor of the buffer keeps it alive
    second, reused = pool.get("a", BIG)
    assert not reused and second is not first
    del held, first
    third, reused = pool.get("a", BIG)
    assert reused
    assert pool.get("b", BIG)[1] is False  # tags never share buffers


def test_zeroed_buffers_and_small_ones() -> None:
    pool = BufferPool()
    buffer, _ = pool.get("z", BIG, zero=True)
    assert not buffer.any()
    small, _ = pool.get("s", (4, 4))
    assert pool.get("s", (4, 4))[0] is not small  # not pooled


def test_many_sizes_do_not_pile_up() -> None:
    pool = BufferPool()
    for rows in range(512, 512 + 40):
        pool.get("a", (rows, 1024))
    assert len(pool._buffers) <= 16


def test_a_live_pyramid_survives_the_next_frame() -> None:
    """The safety property: building frame 2 must not write into frame 1's held pyramids."""
    config = SiftConfig()
    frames = [read_gray(path)[:240, :320].copy() for path in samples.tum_frames()[:2]]
    with torch.inference_mode():
        space = build_scale_space(as_tensor(to_gray_float(frames[0]), "cpu"), config)
        gradients = gradient_pyramid(space, config)
        kept = [g.clone() for g in space.gaussians] + [d.clone() for d in space.dogs]
        kept_magnitude = gradients.flat.magnitude.clone()
        for _ in range(3):
            other = build_scale_space(as_tensor(to_gray_float(frames[1]), "cpu"), config)
            gradient_pyramid(other, config)
        now = list(space.gaussians) + list(space.dogs)
        assert all(torch.equal(a, b) for a, b in zip(kept, now, strict=True))
        assert torch.equal(kept_magnitude, gradients.flat.magnitude)
        # And a released frame's buffers do come back with the same values for the same input.
        del other
        again = build_scale_space(as_tensor(to_gray_float(frames[0]), "cpu"), config)
        assert all(np.array_equal(a.numpy(), b.numpy())
                   for a, b in zip(kept, list(again.gaussians) + list(again.dogs), strict=True))
