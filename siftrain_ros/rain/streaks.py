"""Rain-streak layers: sparse drops smeared by a motion-blur line kernel, over depth layers."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .params import RainParams, draw

# Supersampling of the kernel: a 1-px streak sampled only at pixel centres would look beaded
# at oblique angles; averaging 4x4 sub-samples integrates it over each pixel as a sensor does.
SUPERSAMPLE = 4
# FWHM of a Gaussian = 2 sqrt(2 ln 2) sigma.
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
# Farthest layer's scale relative to the nearest (perspective: far drops look shorter/thinner).
FAR_SCALE = 0.35
# Thinner streaks than this only dim after pixel integration instead of looking thinner.
MIN_WIDTH_PX = 0.6
# Wind is shared by all depths, so layers differ from the frame's angle by a few degrees only.
LAYER_ANGLE_JITTER_DEG = 2.0
# Drops in one layer differ in size and so in brightness; the dimmest is this share of the peak.
MIN_DROP_BRIGHTNESS = 0.6


def streak_kernel(length_px: float, width_px: float, angle_deg: float) -> np.ndarray:
    """Motion-blur kernel of one streak: a box along the fall direction, Gaussian across it.

    Peak is 1 before pixel integration, so a drop of brightness ``b`` leaves a streak of
    brightness ``b`` along its centre line (less for sub-pixel widths, as a real sensor sees).

    Args:
        length_px: streak length, in pixels.
        width_px: full width at half maximum across the streak, in pixels.
        angle_deg: angle from vertical, in degrees; positive tilts the top to the right.

    Returns:
        (kh, kw) float32 kernel with odd sides, centred on the streak, values in 0..1.
    """
    theta = math.radians(angle_deg)
    # Unit vectors in image coordinates (x right, y down): along the streak, towards its top,
    # and across it.
    ax, ay = math.sin(theta), -math.cos(theta)
    nx, ny = math.cos(theta), math.sin(theta)
    sigma = width_px / _FWHM_PER_SIGMA
    half_len, half_wid = 0.5 * length_px, 3.0 * sigma + 0.5
    rx = math.ceil(abs(ax) * half_len + abs(nx) * half_wid)
    ry = math.ceil(abs(ay) * half_len + abs(ny) * half_wid)
    s = SUPERSAMPLE
    xs = (np.arange((2 * rx + 1) * s, dtype=np.float32) + 0.5) / s - 0.5 - rx
    ys = (np.arange((2 * ry + 1) * s, dtype=np.float32) + 0.5) / s - 0.5 - ry
    x, y = xs[None, :], ys[:, None]
    along = x * ax + y * ay
    across = x * nx + y * ny
    fine = np.exp(across * across * np.float32(-0.5 / (sigma * sigma)))
    fine *= np.abs(along) <= half_len
    return fine.reshape(2 * ry + 1, s, 2 * rx + 1, s).mean(axis=(1, 3), dtype=np.float32)


def _depth_scales(n_layers: int) -> np.ndarray:
    """Size scale of each layer, nearest (1) first."""
    return np.linspace(1.0, FAR_SCALE, n_layers) if n_layers > 1 else np.ones(1)


def _streak_sheet(shape: tuple[int, int], rng: np.random.Generator, drops_per_px: float,
                  kernel: np.ndarray, brightness: float, blur: float) -> np.ndarray:
    """One depth layer: random drops smeared by ``kernel``, then defocused."""
    h, w = shape
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    # Drops land on a canvas padded by the kernel radius, so streaks that start outside the
    # frame still cross its borders and density stays uniform up to the edges.
    ph, pw = h + 2 * ky, w + 2 * kx
    n_drops = int(rng.poisson(drops_per_px * ph * pw))
    canvas = np.zeros((ph, pw), np.float32)
    rows = rng.integers(0, ph, n_drops)
    cols = rng.integers(0, pw, n_drops)
    canvas[rows, cols] = brightness * rng.uniform(MIN_DROP_BRIGHTNESS, 1.0, n_drops)
    # The kernel is point-symmetric, so correlation (filter2D) equals convolution.
    sheet = cv2.filter2D(canvas, cv2.CV_32F, kernel, borderType=cv2.BORDER_CONSTANT)
    if blur > 0:
        sheet = cv2.GaussianBlur(sheet, (0, 0), blur, borderType=cv2.BORDER_CONSTANT)
    return sheet[ky:ky + h, kx:kx + w]


def rain_layer(shape: tuple[int, int], rng: np.random.Generator,
               params: RainParams | None = None) -> np.ndarray:
    """Render the rain-streak layer of one frame, all depth layers composited.

    Draws density, length, width, angle, brightness, blur and layer count from ``params``.
    The nearest layer uses the drawn values; farther layers are shorter, thinner, dimmer,
    sharper (the camera focuses past the rain) and denser (more of the volume is far away).
    Layers combine by screen blending, ``1 - prod(1 - s_i)``, so overlaps saturate at 1.

    Args:
        shape: ``(H, W)`` of the frame, in pixels.
        rng: random generator; it is advanced, so one generator renders a sequence of frames.
        params: ranges of the rain model; ``None`` means ``RainParams()`` (medium).

    Returns:
        (H, W) float32 streak intensity in 0..1 (fraction of the image's full range).
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (H, W) with positive sides, got {shape!r}")
    params = RainParams() if params is None else params
    h, w = int(shape[0]), int(shape[1])
    density = draw(rng, params.density)
    length = draw(rng, params.length_px)
    width = draw(rng, params.width_px)
    angle = draw(rng, params.angle_deg)
    brightness = draw(rng, params.brightness)
    blur = draw(rng, params.blur)
    n_layers = int(rng.integers(params.layers[0], params.layers[1] + 1))

    scales = _depth_scales(n_layers)
    # Share drops in proportion to 1/scale: far layers hold more, smaller streaks.
    share = (1.0 / scales) / np.sum(1.0 / scales)
    clear = np.ones((h, w), np.float32)
    for scale, layer_share in zip(scales, share, strict=True):
        layer_angle = angle + rng.uniform(-LAYER_ANGLE_JITTER_DEG, LAYER_ANGLE_JITTER_DEG)
        kernel = streak_kernel(max(length * scale, 1.0), max(width * scale, MIN_WIDTH_PX),
                               float(np.clip(layer_angle, -89.0, 89.0)))
        sheet = _streak_sheet((h, w), rng, density * 1e-3 * layer_share, kernel,
                              brightness * (0.5 + 0.5 * scale), blur * scale)
        clear *= 1.0 - np.clip(sheet, 0.0, 1.0)
    return 1.0 - clear
