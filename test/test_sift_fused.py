"""The fused CPU kernels (orientation, description) against the torch code they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siftrain_ros import samples
from siftrain_ros.sift import SiftConfig, build_scale_space, gradient_pyramid, read_gray
from siftrain_ros.sift.cpu_kernels import orientation_histograms as fused_orientation_histograms
from siftrain_ros.sift.descriptor import describe
from siftrain_ros.sift.detect import detect
from siftrain_ros.sift.image import as_tensor, to_gray_float
from siftrain_ros.sift.orientation import assign_orientations, orientation_histograms
from siftrain_ros.sift.pipeline import remove_duplicates
from siftrain_ros.sift.sampling import FlatGradients, as_flat

CONFIG = SiftConfig()


def _stages(image: np.ndarray):
    with torch.inference_mode():
        space = build_scale_space(as_tensor(to_gray_float(image), "cpu"), CONFIG)
        flat = as_flat(gradient_pyramid(space, CONFIG), CONFIG)
        return detect(space.dogs, CONFIG), flat


@pytest.fixture(scope="module", params=["tum", "hpatches"])
def stages(request):
    path = samples.tum_frames()[0] if request.param == "tum" else samples.hpatches_pair()[0]
    image = read_gray(path)
    top, left = (image.shape[0] - 320) // 2, (image.shape[1] - 400) // 2
    # Central crops keep the test fast while leaving hundreds of keypoints of every octave.
    return _stages(image[top: top + 320, left: left + 400].copy())


def test_orientation_histograms_equal_torch(stages):
    keypoints, flat = stages
    with torch.inference_mode():
        fused = orientation_histograms(flat, keypoints, CONFIG, fused=True)
        reference = orientation_histograms(flat, keypoints, CONFIG, fused=False)
    assert len(keypoints) > 200
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-4)


def test_angles_and_descriptors_equal_torch(stages):
    keypoints, flat = stages
    with torch.inference_mode():
        fused = remove_duplicates(assign_orientations(keypoints, flat, CONFIG, fused=True))
        reference = remove_duplicates(assign_orientations(keypoints, flat, CONFIG, fused=False))
        torch.testing.assert_close(fused.angle, reference.angle, rtol=0, atol=1e-3)
        described = describe(fused, flat, CONFIG, fused=True)
        expected = describe(fused, flat, CONFIG, fused=False)
    assert described.dtype == torch.uint8 and described.shape == (len(fused), 128)
    difference = (described.int() - expected.int()).abs()
    # Same float32 operations in the same order: at most a rounding step apart, almost never.
    assert difference.max() <= 1
    assert (difference.amax(1) == 0).float().mean() > 0.99


def test_fused_kernels_leave_torch_thread_count_alone(stages):
    keypoints, flat = stages
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            describe(assign_orientations(keypoints, flat, CONFIG),
                     flat, CONFIG, fused=True)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_non_finite_gradients_never_corrupt_memory(stages):
    """A broken network output (NaN/inf gradients) must give garbage values, not a crash or a
    write outside the histograms."""
    keypoints, flat = stages
    magnitude = flat.magnitude.clone()
    orientation = flat.orientation.clone()
    orientation[::7] = float("nan")
    magnitude[::11] = float("inf")
    orientation[::13] = 1e30
    broken = FlatGradients(magnitude=magnitude, orientation=orientation, origin=flat.origin,
                           height=flat.height, width=flat.width,
                           level_stride=flat.level_stride, row_stride=flat.row_stride,
                           pad=flat.pad, levels=flat.levels)
    with torch.inference_mode():
        oriented = assign_orientations(keypoints, broken, CONFIG, fused=True)
        descriptors = describe(oriented, broken, CONFIG, fused=True)
    assert descriptors.shape == (len(oriented), 128)


def test_windows_wider_than_the_padding_are_refused(stages):
    keypoints, flat = stages
    centre = flat.centres(keypoints.octave, keypoints.layer - 1, keypoints.row, keypoints.col)
    radius = torch.full_like(centre, flat.pad + 1)
    with pytest.raises(ValueError, match="exceeds the gradient buffers' padding"):
        fused_orientation_histograms(flat, centre, radius, torch.ones(len(centre)), 36)
