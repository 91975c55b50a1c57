"""Unit checks of the SIFT stages and the input validation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from siftrain_ros import samples
from siftrain_ros.sift import (
    Features,
    InvalidImageError,
    Sift,
    SiftConfig,
    build_scale_space,
    features_from_pyramids,
    gradient_pyramid,
    read_gray,
)
from siftrain_ros.sift.detect import IMAGE_BORDER, detect
from siftrain_ros.sift.image import as_tensor, to_gray_float
from siftrain_ros.sift.keypoints import ScaleSpaceKeypoints
from siftrain_ros.sift.scale_space import gaussian_blur


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    # A 320x240 crop keeps these tests fast.
    return read_gray(samples.tum_frames()[0])[120:360, 160:480].copy()


def test_torch_blur_equals_opencv_blur():
    """The differentiable path (training, CUDA) and the OpenCV path (CPU inference) agree,
    including tiny planes where the kernel is wider than the image."""
    rng = np.random.default_rng(0)
    for shape in [(37, 53), (5, 7), (1, 9)]:
        image = torch.from_numpy(rng.uniform(0, 255, shape).astype(np.float32))[None, None]
        for sigma in (0.8, 1.6, 3.1):
            via_opencv = gaussian_blur(image, sigma)
            via_torch = gaussian_blur(image.clone().requires_grad_(True), sigma).detach()
            reference = cv2.GaussianBlur(image[0, 0].numpy(), (0, 0), sigma,
                                         borderType=cv2.BORDER_REFLECT_101)
            np.testing.assert_allclose(via_opencv[0, 0].numpy(), reference, atol=1e-3)
            np.testing.assert_allclose(via_torch[0, 0].numpy(), reference, atol=1e-3)


def test_scale_space_is_differentiable():
    image = torch.rand(2, 1, 48, 64, requires_grad=True)
    space = build_scale_space(image * 255, SiftConfig())
    loss = sum(d.abs().mean() for d in space.dogs)
    loss.backward()
    assert image.grad is not None and torch.isfinite(image.grad).all()
    assert image.grad.abs().sum() > 0


def test_scale_space_shapes(frame):
    config = SiftConfig()
    space = build_scale_space(as_tensor(to_gray_float(frame)), config)
    assert space.gaussians[0].shape[-2:] == (480, 640)  # upsampled base
    for octave, (g, d) in enumerate(zip(space.gaussians, space.dogs, strict=True)):
        assert g.shape[1] == config.n_octave_layers + 3
        assert d.shape[1] == config.n_octave_layers + 2
        assert g.shape[-1] == 640 >> octave
    grads = gradient_pyramid(space, config)
    assert grads.magnitude[0].shape[1] == config.n_octave_layers
    assert float(grads.orientation[0].min()) >= 0 and float(grads.orientation[0].max()) < 360


def test_features_are_typed_and_packed_as_opencv(frame):
    features = Sift()(frame)
    assert len(features) > 50
    assert features.xy.dtype == np.float32 and features.xy.shape == (len(features), 2)
    assert features.descriptors.dtype == np.uint8 and features.descriptors.shape[1] == 128
    assert features.octave.dtype == np.int32
    assert (features.angle >= 0).all() and (features.angle < 360).all()
    layer = (features.octave >> 8) & 255
    assert set(np.unique(layer)) <= {1, 2, 3}
    assert (features.xy[:, 0] < frame.shape[1]).all() and (features.xy[:, 1] < frame.shape[0]).all()
    # Round trip through cv2.KeyPoint keeps every field.
    back = Features.from_cv(features.to_cv_keypoints(), features.descriptors)
    for name in ("xy", "size", "angle", "response", "octave", "descriptors"):
        np.testing.assert_array_equal(getattr(back, name), getattr(features, name))


def test_max_keypoints_keeps_the_strongest(frame):
    everything = Sift()(frame)
    top = Sift(SiftConfig(max_keypoints=40))(frame)
    assert len(top) == 40
    threshold = np.sort(everything.response)[::-1][39]
    assert (top.response >= threshold - 1e-7).all()


def test_detection_and_description_can_come_from_different_images(frame):
    """The seam the networks plug into: DoG from one image, gradients from another."""
    config = SiftConfig()
    clean = build_scale_space(as_tensor(to_gray_float(frame)), config)
    flipped = build_scale_space(as_tensor(to_gray_float(frame[:, ::-1].copy())), config)
    same = features_from_pyramids(clean.dogs, gradient_pyramid(clean, config), config)
    mixed = features_from_pyramids(clean.dogs, gradient_pyramid(flipped, config), config)
    # Same detections (positions come from the DoG) ...
    assert {tuple(p) for p in np.round(same.xy, 3)} == {tuple(p) for p in np.round(mixed.xy, 3)}
    # ... but orientations/descriptors come from the other gradients.
    assert not np.array_equal(np.sort(same.angle), np.sort(mixed.angle))


def test_colour_and_16_bit_input(frame):
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    assert len(Sift()(bgr)) == len(Sift()(frame))
    sixteen = frame.astype(np.uint16) * 257
    assert len(Sift()(sixteen)) == len(Sift()(frame))


@pytest.mark.parametrize("image, message", [
    (np.zeros((0, 0), np.uint8), "too small"),
    (np.zeros((1, 1), np.uint8), "too small"),
    (np.zeros((4, 64, 64), np.uint8)[..., None], "shape"),
    (np.zeros(64, np.uint8), "shape"),
    (np.full((32, 32), np.nan, np.float32), "NaN"),
    (np.full((32, 32), np.inf, np.float32), "NaN"),
    (np.zeros((32, 32), np.int32), "dtype"),
    ("not an image", "numpy array"),
])
def test_bad_images_give_a_clear_error(image, message):
    with pytest.raises(InvalidImageError, match=message):
        Sift()(image)


def test_huge_image_is_refused_before_allocation():
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (20000, 20000), (0, 0))
    with pytest.raises(InvalidImageError, match="too large"):
        Sift()(huge)


def test_unreadable_files(tmp_path):
    with pytest.raises(InvalidImageError, match="no such file"):
        read_gray(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        read_gray(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        read_gray(empty)


def test_flat_image_has_no_keypoints():
    features = Sift()(np.full((64, 64), 128, np.uint8))
    assert len(features) == 0 and features.descriptors.shape == (0, 128)


def test_bad_config_values():
    with pytest.raises(ValueError, match="n_octave_layers"):
        SiftConfig(n_octave_layers=0)
    with pytest.raises(ValueError, match="max_keypoints"):
        SiftConfig(max_keypoints=-1)


def test_cuda_asked_for_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        Sift(device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(frame):
    cpu, gpu = Sift()(frame), Sift(device="cuda")(frame)
    distance = np.linalg.norm(cpu.xy[:, None] - gpu.xy[None], axis=2).min(1)
    assert (distance < 0.5).mean() > 0.97


def _dogs(gray: np.ndarray, config: SiftConfig) -> list[torch.Tensor]:
    with torch.inference_mode():
        return build_scale_space(as_tensor(to_gray_float(gray), "cpu"), config).dogs


def _assert_same_keypoints(fused: ScaleSpaceKeypoints, reference: ScaleSpaceKeypoints) -> None:
    for name in ("octave", "layer", "row", "col"):
        assert torch.equal(getattr(fused, name), getattr(reference, name)), name
    torch.testing.assert_close(fused.offset, reference.offset, atol=1e-5, rtol=0)
    torch.testing.assert_close(fused.response, reference.response, atol=1e-5, rtol=0)
    assert fused.angle.shape == reference.angle.shape and fused.angle.isnan().all()


def _noise() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (192, 256), dtype=np.uint8)


@pytest.mark.parametrize("image, config", [
    *[(path, SiftConfig()) for path in samples.tum_frames()],
    (samples.hpatches_pair()[0], SiftConfig()),
    ("noise", SiftConfig()),
    # Other layer counts and thresholds change the scan bounds and the acceptance tests.
    ("noise", SiftConfig(n_octave_layers=4, contrast_threshold=0.01, edge_threshold=5.0)),
], ids=lambda value: getattr(value, "name", None))
def test_fused_cpu_detection_equals_torch_detection(image, config):
    """The numba kernel (CPU inference) is held to the torch code (CUDA, training): same
    keypoints in the same order."""
    gray = _noise() if isinstance(image, str) else read_gray(image)
    dogs = _dogs(gray, config)
    reference = detect(dogs, config, fused=False)
    assert len(reference) > 100
    _assert_same_keypoints(detect(dogs, config, fused=True), reference)
    _assert_same_keypoints(detect(dogs, config), reference)  # the default on CPU


def test_fused_detection_without_candidates():
    config = SiftConfig()
    dogs = [torch.zeros(1, config.n_octave_layers + 2, 64, 48)]
    found = detect(dogs, config, fused=True)
    assert len(found) == 0
    _assert_same_keypoints(found, detect(dogs, config, fused=False))
    assert found.offset.shape == (0, 3) and found.offset.dtype == torch.float32


def test_fused_detection_skips_octaves_inside_the_border():
    """An octave no more than 2 * IMAGE_BORDER wide or high holds no candidate, however strong
    its extrema."""
    config = SiftConfig()
    dogs = _dogs(read_gray(samples.tum_frames()[0])[:96, :128].copy(), config)
    strong = torch.zeros(1, config.n_octave_layers + 2, 2 * IMAGE_BORDER, 40)
    strong[0, 2, IMAGE_BORDER, 20] = 100.0
    fused = detect([*dogs, strong, strong.transpose(-1, -2)], config, fused=True)
    assert len(fused) > 0 and int(fused.octave.max()) < len(dogs)
    _assert_same_keypoints(fused, detect(dogs, config, fused=False))
