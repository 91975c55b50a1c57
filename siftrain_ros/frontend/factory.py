"""Choosing and building a network backend by name: ``auto``, ``tensorrt`` (``tensorrt_rtx``),
``onnxruntime`` or ``torch``.

``auto`` tries tensorrt, then onnxruntime, then torch, and logs which one it took and why each
one before it was passed over (no GPU, runtime not installed, precision not supported...).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..device import resolve_device
from .backend import BackendError, DerainBackend, TorchBackend
from .weights import MODELS, load_derain_nets

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
#: Backend names :func:`make_backend` also accepts: TensorRT for RTX, a tensorrt flavour.
EXTRA_BACKENDS = ("tensorrt_rtx",)
PRECISIONS = ("fp32", "fp16", "int8")


def default_engine_dir() -> Path:
    """``$SIFTRAIN_ENGINE_DIR``, else ``$XDG_CACHE_HOME/siftrain_ros/engines`` (``~/.cache``).

    ONNX exports, engines, sidecars, timing and calibration caches all live here; everything in
    it is derived from the weights and can be deleted.
    """
    if os.environ.get("SIFTRAIN_ENGINE_DIR"):
        return Path(os.environ["SIFTRAIN_ENGINE_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "siftrain_ros" / "engines"


def _onnx_files(model: str, preset: str, weights_dir: Path | None, engine_dir: Path,
                precision: str, log: Callable[[str], None]) -> tuple[Path, Path | None]:
    from ..export import ensure_onnx

    detect_name, describe_name = MODELS[model]
    detect = ensure_onnx(detect_name, preset, weights_dir=weights_dir, out_dir=engine_dir,
                         precision=precision, log=log)
    describe = None if describe_name == detect_name else ensure_onnx(
        describe_name, preset, weights_dir=weights_dir, out_dir=engine_dir,
        precision=precision, log=log)
    return detect, describe


def _make_one(name: str, *, precision: str, device: str | torch.device, model: str,
              preset: str, weights_dir: Path | None, engine_dir: Path, workspace_mb: int,
              size_hw: tuple[int, int] | None, force_engine_rebuild: bool,
              log: Callable[[str], None]) -> DerainBackend:
    if name == "torch":
        detect_net, describe_net = load_derain_nets(model, preset, weights_dir)
        return TorchBackend(detect_net, describe_net, device=device, precision=precision)
    if name == "onnxruntime":
        from .onnx_backend import OnnxRuntimeBackend, check_options

        check_options(resolve_device(device), precision)  # fail before exporting anything
        detect, describe = _onnx_files(model, preset, weights_dir, engine_dir,
                                       "fp16" if precision == "fp16" else "fp32", log)
        return OnnxRuntimeBackend(detect, describe, device=device, precision=precision, log=log)
    from ..engines.tensorrt_backend import is_strongly_typed
    from .tensorrt_frontend import TensorRTBackend, import_flavour, onnx_precision_for

    trt_mod = import_flavour(name)
    if resolve_device(device).type != "cuda":
        raise BackendError(f"{name} runs engines on a CUDA GPU; the device is {device} "
                           "(use --device cuda)")
    graph = onnx_precision_for(precision, is_strongly_typed(trt_mod), has_calibration=True)
    detect, describe = _onnx_files(model, preset, weights_dir, engine_dir, graph, log)
    return TensorRTBackend(detect, describe, engine_dir=engine_dir, precision=precision,
                           flavour=name, device=device, size_hw=size_hw,
                           workspace_mb=workspace_mb, force_rebuild=force_engine_rebuild,
                           log=log)


def make_backend(name: str = "auto", *, precision: str = "fp32",
                 device: str | torch.device = "cpu", model: str = "ours", preset: str = "lite",
                 weights_dir: Path | None = None, engine_dir: Path | None = None,
                 log: Callable[[str], None] = print, workspace_mb: int = 1024,
                 size_hw: tuple[int, int] | None = None,
                 force_engine_rebuild: bool = False) -> DerainBackend:
    """Build the backend ``name`` for the shipped (or ``weights_dir``) weights.

    Args:
        name: ``auto``, ``tensorrt``, ``tensorrt_rtx``, ``onnxruntime`` or ``torch``.
        precision: ``fp32``, ``fp16`` (CUDA) or ``int8`` (TensorRT only).
        device: ``cpu`` or ``cuda[:N]``; TensorRT needs CUDA.
        model: ``ours`` (DPRNet + GGIRNet) or ``l1`` (one ablation net for both).
        preset: network preset (``lite``).
        weights_dir: directory of ``<net>_<preset>.safetensors`` (default: shipped weights).
        engine_dir: where ONNX exports and engines are cached (default
            :func:`default_engine_dir`).
        log: one line per call (backend choice, exports, engine builds).
        workspace_mb: TensorRT builder workspace limit, MiB.
        size_hw: (H, W) the frames will have at the processing scale: TensorRT builds its
            engines now instead of on the first frame.
        force_engine_rebuild: rebuild TensorRT engines even where the cached ones are valid.

    Raises:
        BackendError (a ValueError): unknown backend or precision, a runtime or GPU that is
            not there, unreadable ONNX/engine files; for ``auto``, every reason.
        MissingWeightsError: weights missing or unreadable.
    """
    if name not in BACKENDS + EXTRA_BACKENDS:
        raise BackendError(f"backend must be one of {', '.join(BACKENDS + EXTRA_BACKENDS)}, "
                           f"got {name!r}")
    if precision not in PRECISIONS:
        raise BackendError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                           f"{precision!r}")
    if model not in MODELS:
        raise BackendError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    resolve_device(device)  # an absent GPU is one clear error, whatever the backend
    kwargs = {"precision": precision, "device": device, "model": model, "preset": preset,
              "weights_dir": weights_dir, "engine_dir": Path(engine_dir or default_engine_dir()),
              "workspace_mb": workspace_mb, "size_hw": size_hw,
              "force_engine_rebuild": force_engine_rebuild, "log": log}
    if name != "auto":
        return _make_one(name, **kwargs)  # type: ignore[arg-type]
    passed: list[str] = []
    for candidate in ("tensorrt", "tensorrt_rtx", "onnxruntime", "torch"):
        try:
            backend = _make_one(candidate, **kwargs)  # type: ignore[arg-type]
        except BackendError as error:
            passed.append(f"{candidate}: {error}")
            continue
        why = ("; passed over " + "; ".join(passed)) if passed else ""
        log(f"backend auto: using {candidate}{why}")
        return backend
    raise BackendError("backend auto: no backend can run this: " + "; ".join(passed))
