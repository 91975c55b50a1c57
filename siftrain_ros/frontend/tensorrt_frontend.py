"""TensorRT backend: DPRNet/GGIRNet as cached TensorRT (or TensorRT-RTX) engines on CUDA tensors.

Engines come from :func:`siftrain_ros.engines.get_or_build_engine`, keyed on everything that
changes them; the optimization profile is ``(1, 1, 16..H, 16..W)`` with ``opt = (H, W)``, the
frame size at the processing scale, so a camera at a fixed size builds once. A frame larger than
the profile gets a new engine (built or loaded from the cache, with a log line saying why).

Precision recipes (see :func:`onnx_precision_for`): TensorRT 10 is weakly typed, so fp16 and int8
are builder flags on the fp32 graph, int8 calibrated on bundled frames with synthetic rain;
TensorRT 11 and TensorRT-RTX are strongly typed, so fp16 comes from the fp16 graph and int8
would need a Q/DQ graph, which this project does not export yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..engines import (
    CalibrationBatches,
    EngineBuildError,
    EngineIOMismatch,
    EngineLoadError,
    TensorRTRunner,
    TensorRTUnavailable,
    get_or_build_engine,
    image_profile,
    import_tensorrt,
)
from ..engines.tensorrt_backend import CachedEngine, is_strongly_typed
from ..export import INPUT_NAME, OUTPUT_NAME
from ..sift.image import MIN_SIDE
from .backend import BackendError, DerainOutput

#: What the engines must expose: dynamic batch (pinned to 1 by the profile), H and W.
EXPECTED_IO = {INPUT_NAME: ("input", (-1, 1, -1, -1)), OUTPUT_NAME: ("output", (-1, 1, -1, -1))}
DEFAULT_WORKSPACE_MB = 1024
#: Engine/build failures that deserve one line, not a traceback.
_ENGINE_ERRORS = (TensorRTUnavailable, EngineBuildError, EngineLoadError, EngineIOMismatch,
                  FileNotFoundError)


def import_flavour(flavour: str) -> Any:
    """``tensorrt`` or ``tensorrt_rtx``, or :class:`BackendError` with the install hint."""
    try:
        return import_tensorrt(flavour)
    except (TensorRTUnavailable, ValueError) as error:
        raise BackendError(str(error)) from error


def onnx_precision_for(precision: str, strongly_typed: bool, has_calibration: bool) -> str:
    """Which exported graph (``fp32`` or ``fp16``) a TensorRT build of ``precision`` starts from.

    Raises:
        BackendError: unknown precision, or int8 where it cannot be built (strongly typed
            TensorRT without a Q/DQ graph; weakly typed without calibration data).
    """
    if precision == "fp32":
        return "fp32"
    if precision == "fp16":
        return "fp16" if strongly_typed else "fp32"
    if precision == "int8":
        if strongly_typed:
            raise BackendError("precision int8 on strongly typed TensorRT (11, TensorRT-RTX) "
                               "needs an ONNX with Q/DQ nodes, which siftrain does not export "
                               "yet; use fp16")
        if not has_calibration:
            raise BackendError("precision int8 needs calibration data (bundled sample frames "
                               "not found); use fp16 or reinstall the package")
        return "fp32"
    raise BackendError(f"unknown precision {precision!r}; expected fp32, fp16 or int8")


def calibration_frames(height: int, width: int, count: int = 8) -> list[np.ndarray]:
    """INT8 calibration inputs: bundled TUM frames with synthetic rain of several strengths.

    Returns:
        ``count`` (1, 1, height, width) float32 arrays in 0..1 (empty if no samples exist).
    """
    from .. import samples
    from ..rain import RainParams, add_rain
    from ..sift import read_gray

    frames = [read_gray(p) for p in samples.tum_frames()]
    out: list[np.ndarray] = []
    presets = ("light", "medium", "heavy")
    for i in range(count if frames else 0):
        gray = cv2.resize(frames[i % len(frames)], (width, height), interpolation=cv2.INTER_AREA)
        rainy = add_rain(gray, seed=i, params=RainParams.preset(presets[i % len(presets)]))
        out.append((rainy.astype(np.float32) / 255.0)[None, None])
    return out


def _trt_log(log: Callable[[str], None]) -> Callable[[str, str], None]:
    def forward(level: str, message: str) -> None:
        if level != "debug":  # TensorRT's INFO chatter maps to debug
            log(message if level == "info" else f"{level}: {message}")
    return forward


def build_net_engine(onnx: Path, engine_dir: Path, *, precision: str, size_hw: tuple[int, int],
                     flavour: str = "tensorrt", workspace_mb: int = DEFAULT_WORKSPACE_MB,
                     calibrate: bool = True, compute_capabilities: Sequence[str] | None = None,
                     build_only: bool = False, force_rebuild: bool = False,
                     log: Callable[[str], None] = print) -> CachedEngine:
    """Get (or build) the engine of one exported net for frames of ``size_hw`` = (H, W) px.

    int8 on weakly typed TensorRT calibrates on :func:`calibration_frames` at (H, W), with the
    calibration cache beside the engines; the timing cache lives there too.

    Raises:
        BackendError: anything that stops the engine from being built or loaded.
    """
    height, width = size_hw
    if min(height, width) < MIN_SIDE:
        raise BackendError(f"frame {width}x{height} is smaller than {MIN_SIDE} px")
    calibration = None
    if precision == "int8" and calibrate:
        frames = calibration_frames(height, width)
        if not frames:
            raise BackendError("precision int8 needs calibration data; no bundled frames found")
        calibration = CalibrationBatches(
            frames, input_name=INPUT_NAME,
            cache_path=Path(engine_dir) / f"{Path(onnx).stem}.{width}x{height}.int8.calib",
            device="cuda")
    try:
        return get_or_build_engine(
            onnx, engine_dir, precision=precision, flavour=flavour,
            profile=image_profile((MIN_SIDE, MIN_SIDE), (height, width), (height, width),
                                  name=INPUT_NAME),
            expected_io=EXPECTED_IO, workspace_bytes=int(workspace_mb) << 20,
            calibration=calibration, compute_capabilities=compute_capabilities,
            build_only=build_only, force_rebuild=force_rebuild, log=_trt_log(log))
    except _ENGINE_ERRORS as error:
        raise BackendError(f"{flavour} engine for {Path(onnx).name}: {error}") from error


class TensorRTBackend:
    """DPRNet and GGIRNet as TensorRT engines; frames stay on the GPU (torch CUDA tensors).

    Args:
        detect_onnx: exported DPRNet graph for this precision (see :func:`onnx_precision_for`).
        describe_onnx: exported GGIRNet graph, or None when one net serves both.
        engine_dir: engine cache directory (engines, sidecars, timing and calibration caches).
        precision: ``fp32``, ``fp16`` or ``int8``.
        flavour: ``tensorrt`` or ``tensorrt_rtx``.
        device: a CUDA device.
        size_hw: build engines for this (H, W) now; otherwise on the first frame.
        workspace_mb: builder workspace limit in MiB (lower it on 8 GB Jetsons).
        force_rebuild: rebuild the engines once even where the cached ones are valid.

    Raises:
        BackendError: TensorRT missing, no CUDA device, precision unusable, engine failures.
    """

    def __init__(self, detect_onnx: Path, describe_onnx: Path | None, *, engine_dir: Path,
                 precision: str = "fp32", flavour: str = "tensorrt",
                 device: str | torch.device = "cuda", size_hw: tuple[int, int] | None = None,
                 workspace_mb: int = DEFAULT_WORKSPACE_MB, force_rebuild: bool = False,
                 log: Callable[[str], None] = print):
        trt_mod = import_flavour(flavour)
        self.name = flavour
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise BackendError(f"unknown device {device!r}") from error
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise BackendError(f"{flavour} runs engines on a CUDA GPU, but the device is "
                               f"{self.device}" + ("" if torch.cuda.is_available() else
                                                   " and torch sees no CUDA GPU"))
        onnx_precision_for(precision, is_strongly_typed(trt_mod), has_calibration=True)
        self.precision = precision
        self.flavour = flavour
        self.engine_dir = Path(engine_dir)
        self.workspace_mb = workspace_mb
        self._force = force_rebuild  # first build only: later frames reuse what it built
        self._log = log
        self._onnx = [Path(detect_onnx)] + ([] if describe_onnx is None else [Path(describe_onnx)])
        self._size: tuple[int, int] | None = None
        self._runners: list[TensorRTRunner] = []
        if size_hw is not None:
            self._prepare(size_hw)

    def _prepare(self, size_hw: tuple[int, int]) -> None:
        runners = []
        for onnx in self._onnx:
            cached = build_net_engine(onnx, self.engine_dir, precision=self.precision,
                                      size_hw=size_hw, flavour=self.flavour,
                                      workspace_mb=self.workspace_mb,
                                      force_rebuild=self._force, log=self._log)
            assert cached.engine is not None  # not build_only
            try:
                runners.append(TensorRTRunner(cached.engine, device=str(self.device)))
            except _ENGINE_ERRORS as error:
                raise BackendError(f"{self.flavour} engine for {onnx.name}: {error}") from error
        self._runners, self._size, self._force = runners, size_hw, False

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> DerainOutput:
        """Derain a (1, 1, H, W) float frame in 0..1; outputs are float32 CUDA tensors."""
        size = (int(image.shape[-2]), int(image.shape[-1]))
        if self._size is None or size[0] > self._size[0] or size[1] > self._size[1]:
            if self._size is not None:
                self._log(f"frame {size[1]}x{size[0]} exceeds the engine profile "
                          f"{self._size[1]}x{self._size[0]}; getting engines for it")
            self._prepare(size)
        outputs = []
        for runner in self._runners:
            x = image.to(self.device, runner.dtype(INPUT_NAME)).contiguous()
            outputs.append(runner.infer({INPUT_NAME: x})[OUTPUT_NAME].float().clamp(0, 1))
        return DerainOutput(detect=outputs[0], describe=outputs[-1])
