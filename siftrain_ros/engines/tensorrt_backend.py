"""TensorRT engines for the CNNs: build from ONNX, cache, load, validate I/O, run on CUDA tensors.

Written against the TensorRT Python API of TensorRT 10 (JetPack 6) and TensorRT 11, and usable
with TensorRT for RTX (``tensorrt_rtx``), whose module mirrors ``tensorrt``. TensorRT is never
imported at module import time: :func:`import_tensorrt` loads the flavour asked for, so this
module imports (and its pure helpers run) on machines without TensorRT.

Differences between the flavours that this module handles (see :func:`build_engine`):

* Typing. TensorRT 10 builds weakly typed networks: fp16 comes from ``BuilderFlag.FP16``,
  int8 from ``BuilderFlag.INT8`` plus an ``IInt8EntropyCalibrator2`` (or Q/DQ nodes).
  TensorRT 11 and TensorRT-RTX are strongly typed: there is no ``BuilderFlag.FP16``/``INT8``
  and no calibrator class, so fp16 must come from an fp16 (or mixed-precision) ONNX and int8
  from an ONNX with Q/DQ nodes. The network is created with ``STRONGLY_TYPED`` there where the
  flag exists (both flavours are strongly typed either way; TensorRT 11 accepts and ignores it),
  and the ONNX's tensor types are checked against the precision asked for, so an fp32 ONNX is
  never silently cached as an "fp16" engine (nor an fp16 ONNX as "fp32").
* Targets. TensorRT builds for the GPU it runs on (it needs one). TensorRT-RTX builds
  ahead-of-time without a GPU for a list of compute capabilities (``SM75``, ``SM80``, ``SM86``,
  ``SM89``, ``SM120``, ``SM121``; default: Ampere and later; no ``SM90`` and no Jetson
  ``SM87``), set with ``IBuilderConfig.num_compute_capabilities`` and
  ``set_compute_capability``; ``CURRENT`` needs a GPU.
* Timing cache. Kept next to the engines for TensorRT; TensorRT-RTX >= 1.2 deprecates the
  timing-cache calls as no-ops (they emit ``DeprecationWarning``), so they are skipped there.
* Load diagnostics. TensorRT-RTX has ``Runtime.get_engine_validity`` (unsupported compute
  capability, old driver, malformed engine); it is used to explain a failed deserialize.
* TensorRT 8.x needed ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``; 10 deprecates and
  ignores it, so it is only set for major versions below 10 (8.x is otherwise untested).
* Layers: ``ILayer.precision`` does not exist in TensorRT-RTX; precision is read from tensor
  types (``ITensor.dtype``) and ``LayerType.QUANTIZE``/``DEQUANTIZE``, which both have.

Type annotations refer to the ``tensorrt`` module (``tensorrt-stubs`` gives them to mypy);
objects from ``tensorrt_rtx`` have the same methods for everything used here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import (
    CacheDecision,
    EngineKey,
    Flavour,
    Precision,
    Profile,
    SidecarError,
    atomic_write_bytes,
    check_cached_engine,
    engine_paths,
    explain_missing_engine,
    make_profile,
    read_sidecar,
    sha256_bytes,
    sha256_file,
    validate_flavour,
    validate_precision,
    write_sidecar,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    import tensorrt as trt
    import torch

__all__ = [
    "DEFAULT_WORKSPACE_BYTES",
    "CachedEngine",
    "CalibrationBatches",
    "EngineBuildError",
    "EngineIOMismatch",
    "EngineLoadError",
    "LogFn",
    "OnnxParseError",
    "TensorIO",
    "TensorRTRunner",
    "TensorRTUnavailable",
    "build_engine",
    "check_engine_io",
    "detect_cuda_device",
    "engine_io",
    "get_or_build_engine",
    "import_tensorrt",
    "io_mismatches",
    "is_strongly_typed",
    "load_engine",
    "make_entropy_calibrator",
    "make_trt_logger",
    "normalise_compute_capabilities",
]

#: ``log(level, message)`` with level one of ``"debug"``, ``"info"``, ``"warning"``, ``"error"``.
#: Adapt a ``logging.Logger`` or an rclpy logger with ``lambda lvl, msg: getattr(lg, lvl)(msg)``.
LogFn = Callable[[str, str], None]

#: Builder scratch memory limit. 1 GiB suits desktop GPUs; lower it on 8 GB Jetsons, where
#: builds can run out of memory.
DEFAULT_WORKSPACE_BYTES = 1 << 30

#: An expected I/O tensor: (mode ``"input"``/``"output"``, shape with -1 for dynamic dims;
#: ``None`` matches any size).
IOSpec = tuple[str, Sequence[int | None]]

_INSTALL_HINTS = {
    "tensorrt": "install TensorRT (JetPack ships it; on x86 `pip install tensorrt-cu12`)",
    "tensorrt_rtx": "install TensorRT for RTX (`pip install tensorrt-rtx-cu13`)",
}

_log_module = logging.getLogger(__name__)


def _default_log(level: str, message: str) -> None:
    getattr(_log_module, level, _log_module.info)(message)


class TensorRTUnavailable(ImportError):
    """The requested TensorRT flavour (or the GPU it needs) is not usable here."""


class EngineBuildError(RuntimeError):
    """Building a serialized engine failed; the message carries TensorRT's errors."""


class OnnxParseError(EngineBuildError):
    """TensorRT's ONNX parser rejected the model; the message lists every parser error."""


class EngineLoadError(RuntimeError):
    """``deserialize_cuda_engine`` returned None (wrong version, wrong GPU, corrupt plan).

    Attributes:
        diagnostics: TensorRT-RTX ``EngineInvalidityDiagnostics`` names (e.g.
            ``UNSUPPORTED_CC``, ``OLD_CUDA_DRIVER``); empty for TensorRT, which has no such API.
    """

    def __init__(self, message: str, diagnostics: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


#: Load failures a rebuild cannot fix: the machine, not the engine file, is the problem.
_ENVIRONMENT_DIAGNOSTICS = frozenset(
    {
        "UNSUPPORTED_CC",
        "OLD_CUDA_DRIVER",
        "OLD_CUDA_RUNTIME",
        "INSUFFICIENT_GPU_MEMORY",
        "CUDA_ERROR",
    }
)


class EngineIOMismatch(RuntimeError):
    """An engine's input/output tensors are not the ones the caller expects."""


# --------------------------------------------------------------------------- import shim


def import_tensorrt(flavour: str = "tensorrt") -> ModuleType:
    """Import ``tensorrt`` or ``tensorrt_rtx`` and return the module.

    Raises:
        ValueError: unknown flavour.
        TensorRTUnavailable: not installed, its native libraries fail to load, or only type
            stubs are installed (``tensorrt-stubs`` makes ``import tensorrt`` succeed as an
            empty namespace package, so the import alone proves nothing).
    """
    name = validate_flavour(flavour)
    try:
        module = importlib.import_module(name)
    except (ImportError, OSError) as exc:  # OSError: libnvinfer*.so missing or mismatched
        raise TensorRTUnavailable(f"cannot import {name}: {exc}; {_INSTALL_HINTS[name]}") from exc
    if not hasattr(module, "Builder"):
        raise TensorRTUnavailable(
            f"the {name!r} package found at {list(getattr(module, '__path__', []))} has no "
            f"TensorRT bindings (only type stubs?); {_INSTALL_HINTS[name]}"
        )
    return module


def _flavour_of(trt_mod: ModuleType) -> Flavour:
    return "tensorrt_rtx" if trt_mod.__name__.startswith("tensorrt_rtx") else "tensorrt"


def trt_version(trt_mod: ModuleType) -> str:
    """The module's version string, e.g. ``"10.3.0.30"`` or ``"1.7.1.116"`` (RTX)."""
    return str(getattr(trt_mod, "__version__", "unknown"))


def _major(trt_mod: ModuleType) -> int:
    match = re.match(r"(\d+)", trt_version(trt_mod))
    return int(match.group(1)) if match else 0


def is_strongly_typed(trt_mod: ModuleType) -> bool:
    """True where networks are strongly typed: TensorRT-RTX, and TensorRT 11 or later."""
    return _flavour_of(trt_mod) == "tensorrt_rtx" or _major(trt_mod) >= 11


# --------------------------------------------------------------------------- logging


def make_trt_logger(
    trt_mod: ModuleType, log: LogFn | None = None, *, min_severity: str = "warning"
) -> trt.ILogger:
    """A ``trt.ILogger`` that forwards to ``log`` and remembers errors for exception messages.

    TensorRT's INFO is very chatty during builds, so it maps to ``debug``. The returned object
    has an ``errors`` list attribute (ERROR and INTERNAL_ERROR messages, in order).

    Args:
        min_severity: lowest TensorRT severity forwarded: ``"error"``, ``"warning"``,
            ``"info"`` or ``"verbose"``.
    """
    logger: trt.ILogger = _logger_class(trt_mod.ILogger)(trt_mod, log or _default_log, min_severity)
    return logger


@functools.cache
def _logger_class(base: Any) -> Any:
    # ILogger is a pybind11 trampoline: subclasses must call base.__init__ and override log().
    # The class is made per module because tensorrt and tensorrt_rtx have distinct bases.
    class _ForwardingLogger(base):  # type: ignore[misc]
        # TensorRT severities: 0 INTERNAL_ERROR, 1 ERROR, 2 WARNING, 3 INFO, 4 VERBOSE.
        _LEVELS = ("error", "error", "warning", "debug", "debug")
        _THRESHOLDS = {"error": 1, "warning": 2, "info": 3, "verbose": 4}

        def __init__(self, trt_mod: ModuleType, log: LogFn, min_severity: str) -> None:
            base.__init__(self)
            self.errors: list[str] = []
            self._log = log
            self._threshold = self._THRESHOLDS[min_severity]
            self._prefix = f"[{trt_mod.__name__}] "

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)
            if level <= 1:
                self.errors.append(msg)
            if level <= self._threshold:
                self._log(self._LEVELS[min(level, 4)], self._prefix + msg)

    return _ForwardingLogger


def _dims(dims: trt.Dims | Sequence[int]) -> tuple[int, ...]:
    """A ``trt.Dims`` as a plain tuple (Dims supports len and indexing, not the iterator API)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def _errors(logger: trt.ILogger) -> str:
    errs: list[str] = getattr(logger, "errors", [])
    return ("; TensorRT errors: " + " | ".join(errs[-5:])) if errs else ""


# --------------------------------------------------------------------------- I/O description


@dataclasses.dataclass(frozen=True)
class TensorIO:
    """One engine or network I/O tensor. ``shape`` has -1 for dynamic dims; dtype e.g. FLOAT."""

    name: str
    mode: str  # "input" or "output"
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form for the sidecar."""
        return {"mode": self.mode, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> TensorIO:
        """Inverse of :meth:`to_json`."""
        return cls(
            name, str(data["mode"]), tuple(int(d) for d in data["shape"]), str(data["dtype"])
        )


def io_mismatches(actual: Mapping[str, TensorIO], expected: Mapping[str, IOSpec]) -> list[str]:
    """Differences between actual I/O tensors and ``{name: (mode, shape)}``; empty if they match.

    Expected shapes use -1 for dimensions that must be dynamic and ``None`` for "any".
    Tensors the caller did not list are reported too: an extra input would be left unbound.
    """
    problems: list[str] = []
    for name, (mode, shape) in expected.items():
        got = actual.get(name)
        if got is None:
            problems.append(f"missing {mode} tensor {name!r} (engine has {sorted(actual)})")
            continue
        if got.mode != mode:
            problems.append(f"tensor {name!r} is an {got.mode}, expected an {mode}")
        want = tuple(shape)
        if len(got.shape) != len(want) or any(
            w is not None and w != g for w, g in zip(want, got.shape, strict=False)
        ):
            problems.append(f"tensor {name!r} has shape {got.shape}, expected {want}")
    for name in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected {actual[name].mode} tensor {name!r} {actual[name].shape}")
    return problems


def engine_io(engine: trt.ICudaEngine) -> dict[str, TensorIO]:
    """I/O tensors of a deserialized engine, via the name-based API of TensorRT >= 8.5."""
    out: dict[str, TensorIO] = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        out[name] = TensorIO(
            name=name,
            mode=engine.get_tensor_mode(name).name.lower(),
            shape=_dims(engine.get_tensor_shape(name)),
            dtype=engine.get_tensor_dtype(name).name,
        )
    return out


def check_engine_io(engine: trt.ICudaEngine, expected: Mapping[str, IOSpec]) -> list[str]:
    """:func:`io_mismatches` of ``engine``'s tensors against ``{name: (mode, shape)}``.

    Example: ``{"image": ("input", (1, 1, -1, -1)), "prob": ("output", (1, 1, -1, -1))}``.
    """
    return io_mismatches(engine_io(engine), expected)


def _network_io(network: trt.INetworkDefinition) -> dict[str, TensorIO]:
    out: dict[str, TensorIO] = {}
    for mode, count, get in (
        ("input", network.num_inputs, network.get_input),
        ("output", network.num_outputs, network.get_output),
    ):
        for i in range(count):
            t = get(i)
            out[t.name] = TensorIO(t.name, mode, _dims(t.shape), t.dtype.name)
    return out


# --------------------------------------------------------------------------- INT8 calibration


class CalibrationBatches:
    """Calibration data for INT8 entropy calibration (TensorRT 10 implicit quantization).

    Feeds float32 NCHW batches for one input, one per ``get_batch`` call, through a single
    device buffer (a torch CUDA tensor, so no pycuda dependency). The calibration cache file
    lets later builds skip calibration; it is only valid for the same model and data, so give
    each model its own ``cache_path``.

    Args:
        batches: float32 arrays, all of the same shape ``(N, C, H, W)``; with dynamic shapes
            TensorRT calibrates at the profile's *opt* shape, so use that shape.
        input_name: the network input the batches are for.
        cache_path: calibration cache file (read if present, written after calibration).
        device: torch device for the buffer; ``"cuda"`` in real use (``"cpu"`` only for tests).
    """

    def __init__(
        self,
        batches: Sequence[npt.NDArray[np.float32]],
        *,
        input_name: str = "image",
        cache_path: str | os.PathLike[str] | None = None,
        device: str = "cuda",
    ) -> None:
        self._batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]
        shapes = {b.shape for b in self._batches}
        if len(shapes) > 1:
            raise ValueError(f"calibration batches must share one shape, got {sorted(shapes)}")
        if shapes and len(next(iter(shapes))) != 4:
            raise ValueError(f"calibration batches must be NCHW, got shape {next(iter(shapes))}")
        self.input_name = input_name
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.device = device
        self._index = 0
        self._buffer: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of every batch, ``(N, C, H, W)``; ``()`` with no batches."""
        return tuple(self._batches[0].shape) if self._batches else ()

    @property
    def batch_size(self) -> int:
        """N of the batches (what ``get_batch_size`` returns); 1 with no batches."""
        return self.shape[0] if self._batches else 1

    def __len__(self) -> int:
        return len(self._batches)

    def fingerprint(self) -> str:
        """sha256 over input name, shapes and bytes of all batches: part of the engine key."""
        digest = hashlib.sha256(self.input_name.encode())
        for b in self._batches:
            digest.update(repr(b.shape).encode())
            digest.update(b.tobytes())
        return digest.hexdigest()[:16]

    def reset(self) -> None:
        """Start again from the first batch."""
        self._index = 0

    def next_batch(self, names: Sequence[str]) -> list[int] | None:
        """Device pointers for the next batch, in ``names`` order, or None when exhausted."""
        if self._index >= len(self._batches):
            return None
        if list(names) != [self.input_name]:
            raise ValueError(f"calibrator feeds only {self.input_name!r}, TensorRT asked {names}")
        import torch  # lazy: torch is heavy and only calibration needs it

        batch = torch.from_numpy(self._batches[self._index])
        if self._buffer is None:
            self._buffer = torch.empty(batch.shape, dtype=torch.float32, device=self.device)
        self._buffer.copy_(batch)
        if self._buffer.is_cuda:
            # TensorRT reads the buffer on its own stream right after we return.
            torch.cuda.current_stream(self._buffer.device).synchronize()
        self._index += 1
        return [int(self._buffer.data_ptr())]

    def read_cache(self) -> bytes | None:
        """Calibration cache bytes, or None to make TensorRT calibrate."""
        if self.cache_path is not None and self.cache_path.is_file():
            return self.cache_path.read_bytes()
        return None

    def write_cache(self, data: bytes) -> None:
        """Store TensorRT's calibration cache (atomically, like the engines)."""
        if self.cache_path is not None:
            atomic_write_bytes(self.cache_path, data)


def make_entropy_calibrator(
    trt_mod: ModuleType, data: CalibrationBatches, log: LogFn | None = None
) -> trt.IInt8EntropyCalibrator2:
    """An ``IInt8EntropyCalibrator2`` subclass instance of ``trt_mod`` fed from ``data``.

    Raises:
        EngineBuildError: where the module has no such class (TensorRT 11 removed implicit
            calibration; TensorRT-RTX never had it): use an ONNX with Q/DQ nodes instead.
    """
    base = getattr(trt_mod, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise EngineBuildError(
            f"{trt_mod.__name__} {trt_version(trt_mod)} has no IInt8EntropyCalibrator2 "
            "(implicit INT8 calibration is gone in TensorRT 11 and absent from TensorRT-RTX); "
            "build int8 from an ONNX with Q/DQ nodes instead"
        )
    calibrator: trt.IInt8EntropyCalibrator2 = _entropy_calibrator_class(base)(
        data, log or _default_log
    )
    return calibrator


@functools.cache
def _entropy_calibrator_class(base: Any) -> Any:
    class Int8EntropyCalibrator(base):  # type: ignore[misc]
        """Entropy calibrator 2 over :class:`CalibrationBatches` (pybind11 trampoline)."""

        def __init__(self, data: CalibrationBatches, log: LogFn) -> None:
            base.__init__(self)  # required by pybind11 before any override is called
            self.data = data
            self._log = log

        def get_batch_size(self) -> int:
            return self.data.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            # An exception escaping into TensorRT's C++ would abort the build obscurely.
            try:
                return self.data.next_batch(names)
            except Exception as exc:
                self._log("error", f"INT8 calibration batch failed: {exc!r}")
                return None

        def read_calibration_cache(self) -> bytes | None:
            return self.data.read_cache()

        def write_calibration_cache(self, cache: Any) -> None:
            self.data.write_cache(bytes(memoryview(cache)))

    return Int8EntropyCalibrator


# --------------------------------------------------------------------------- build


def normalise_compute_capabilities(values: Sequence[str] | None) -> tuple[str, ...]:
    """``["8.6", "sm_89", "120", "current"]`` -> ``("SM86", "SM89", "SM120", "CURRENT")``."""
    out: list[str] = []
    for raw in values or ():
        text = str(raw).strip().upper().replace("_", "").replace(".", "")
        if text == "CURRENT":
            out.append(text)
            continue
        text = text.removeprefix("SM")
        if not text.isdigit():
            raise ValueError(f"bad compute capability {raw!r}; use e.g. '8.6', 'SM86', 'current'")
        out.append(f"SM{int(text)}")
    if "CURRENT" in out and len(out) > 1:
        raise ValueError("'current' must be the only compute capability target")
    return tuple(out)


@dataclasses.dataclass
class _BuildOutput:
    engine_bytes: bytes
    io: dict[str, TensorIO]
    seconds: float


def _profile_problems(network_io: Mapping[str, TensorIO], profile: Profile) -> list[str]:
    problems: list[str] = []
    inputs = {n: t for n, t in network_io.items() if t.mode == "input"}
    by_name = {e[0]: e for e in profile}
    for name, t in inputs.items():
        if name not in by_name:
            if -1 in t.shape:
                problems.append(f"dynamic input {name!r} {t.shape} has no profile entry")
            continue
        _, lo, opt, hi = by_name[name]
        if len(lo) != len(t.shape):
            problems.append(f"input {name!r} has rank {len(t.shape)}, profile rank {len(lo)}")
            continue
        for axis, d in enumerate(t.shape):
            if d != -1 and not lo[axis] == opt[axis] == hi[axis] == d:
                problems.append(f"input {name!r} axis {axis} is fixed at {d}, profile varies it")
    for name in by_name.keys() - inputs.keys():
        problems.append(f"profile names {name!r}, which is not a network input {sorted(inputs)}")
    return problems


def _precision_recipe_problem(
    precision: Precision,
    strongly_typed: bool,
    has_half: bool,
    has_qdq: bool,
    has_calibration: bool,
    flavour_desc: str,
) -> str | None:
    """Why this ONNX + precision cannot be built as asked, or None."""
    if precision == "fp32" and (has_half or has_qdq):
        kind = "Q/DQ (int8)" if has_qdq else "fp16"
        return f"precision fp32 asked, but the ONNX has {kind} tensors; pick the fp32 model file"
    if not strongly_typed:
        if precision == "int8" and not (has_qdq or has_calibration):
            return "precision int8 needs calibration batches or an ONNX with Q/DQ nodes"
        return None
    if precision == "fp16" and not has_half:
        return (
            f"precision fp16 asked, but {flavour_desc} is strongly typed (no FP16 builder flag) "
            "and the ONNX is all fp32; export an fp16/mixed-precision ONNX (model.half() before "
            "torch.onnx.export, or ModelOpt AutoCast)"
        )
    if precision == "int8":
        if has_calibration:
            return (
                f"{flavour_desc} cannot use an INT8 calibrator (strongly typed); give an ONNX "
                "with Q/DQ nodes"
            )
        if not has_qdq:
            return f"precision int8 on {flavour_desc} needs an ONNX with Q/DQ nodes"
    return None


def build_engine(
    onnx_path: str | os.PathLike[str],
    *,
    profile: Profile | Sequence[Sequence[Any]],
    precision: str = "fp32",
    flavour: str = "tensorrt",
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache_path: str | os.PathLike[str] | None = None,
    calibration: CalibrationBatches | None = None,
    compute_capabilities: Sequence[str] | None = None,
    log: LogFn | None = None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine (plan) for it.

    Args:
        onnx_path: ONNX model; external weight files are found relative to it.
        profile: optimization profile ``((name, min, opt, max), ...)``, e.g.
            ``image_profile((240, 320), (480, 640), (1080, 1920))`` for input ``image`` of shape
            ``(1, 1, H, W)``; every dynamic input needs an entry.
        precision: ``fp32``, ``fp16`` or ``int8`` (see the module docstring for how each
            flavour gets there).
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        workspace_bytes: ``MemoryPoolType.WORKSPACE`` limit in bytes.
        timing_cache_path: TensorRT timing cache file, loaded if present and saved after the
            build (speeds up rebuilds); ignored for TensorRT-RTX, where it is a no-op.
        calibration: INT8 calibration data (TensorRT 10 only).
        compute_capabilities: TensorRT-RTX targets (``"SM86"``, ``"8.9"``, ``"current"``);
            None for RTX's default. Rejected for TensorRT, which targets the current GPU.
        log: ``log(level, message)``; defaults to this module's ``logging`` logger.

    Returns:
        The serialized engine bytes.

    Raises:
        TensorRTUnavailable, OnnxParseError, EngineBuildError, ValueError.
    """
    return _build(
        onnx_path,
        profile=make_profile(profile),
        precision=validate_precision(precision),
        trt_mod=import_tensorrt(flavour),
        workspace_bytes=workspace_bytes,
        timing_cache_path=timing_cache_path,
        calibration=calibration,
        compute_capabilities=normalise_compute_capabilities(compute_capabilities),
        log=log or _default_log,
    ).engine_bytes


def _build(
    onnx_path: str | os.PathLike[str],
    *,
    profile: Profile,
    precision: Precision,
    trt_mod: ModuleType,
    workspace_bytes: int,
    timing_cache_path: str | os.PathLike[str] | None,
    calibration: CalibrationBatches | None,
    compute_capabilities: tuple[str, ...],
    log: LogFn,
) -> _BuildOutput:
    onnx_file = Path(onnx_path)
    if not onnx_file.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_file}")
    flavour = _flavour_of(trt_mod)
    desc = f"{trt_mod.__name__} {trt_version(trt_mod)}"
    strongly_typed = is_strongly_typed(trt_mod)
    if compute_capabilities and flavour != "tensorrt_rtx":
        raise ValueError(
            "compute_capabilities apply to TensorRT-RTX only; TensorRT targets the GPU it runs on"
        )

    logger = make_trt_logger(trt_mod, log)
    builder: trt.Builder = trt_mod.Builder(logger)
    creation = trt_mod.NetworkDefinitionCreationFlag
    flags = 0
    if strongly_typed and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    if _major(trt_mod) < 10 and flavour == "tensorrt" and hasattr(creation, "EXPLICIT_BATCH"):
        flags |= 1 << int(creation.EXPLICIT_BATCH)  # TensorRT 8.x: ONNX needs explicit batch
    network: trt.INetworkDefinition = builder.create_network(flags)
    parser: trt.OnnxParser = trt_mod.OnnxParser(network, logger)
    # parse_from_file (not parse(bytes)) so external-data weights resolve next to the file.
    if not parser.parse_from_file(str(onnx_file)):
        errors = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            where = f" at node {err.node()} {err.node_name()!r} ({err.node_operator()})"
            errors.append(f"{err.code().name}: {err.desc()}{where if err.node() >= 0 else ''}")
        raise OnnxParseError(f"{desc} could not parse {onnx_file}: " + " | ".join(errors))

    net_io = _network_io(network)
    problems = _profile_problems(net_io, profile)
    if problems:
        raise EngineBuildError(f"optimization profile does not fit {onnx_file.name}: {problems}")

    dtype = trt_mod.DataType
    layer_type = trt_mod.LayerType
    has_half = any(t.dtype in ("HALF", "BF16") for t in net_io.values())
    has_qdq = False
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        has_qdq |= layer.type in (layer_type.QUANTIZE, layer_type.DEQUANTIZE)
        has_half |= any(
            layer.get_output(j).dtype in (dtype.HALF, dtype.BF16) for j in range(layer.num_outputs)
        )
    problem = _precision_recipe_problem(
        precision, strongly_typed, has_half, has_qdq, calibration is not None, desc
    )
    if problem:
        raise EngineBuildError(f"{onnx_file.name}: {problem}")

    config: trt.IBuilderConfig = builder.create_builder_config()
    config.set_memory_pool_limit(trt_mod.MemoryPoolType.WORKSPACE, int(workspace_bytes))

    opt_profile: trt.IOptimizationProfile = builder.create_optimization_profile()
    for name, lo, opt, hi in profile:
        opt_profile.set_shape(name, trt_mod.Dims(lo), trt_mod.Dims(opt), trt_mod.Dims(hi))
    if profile and config.add_optimization_profile(opt_profile) < 0:
        raise EngineBuildError(
            f"{desc} rejected the optimization profile {profile}{_errors(logger)}"
        )

    calibrator = None
    if not strongly_typed:
        # TensorRT 10 weak typing: precision flags let the builder pick lower-precision kernels.
        if precision in ("fp16", "int8"):
            config.set_flag(trt_mod.BuilderFlag.FP16)  # int8: layers without int8 fall to fp16
        if precision == "int8":
            config.set_flag(trt_mod.BuilderFlag.INT8)
            if calibration is not None and not has_qdq:
                opt_shapes = {name: opt for name, _, opt, _ in profile}
                want = opt_shapes.get(calibration.input_name)
                if want is not None and calibration.shape != want:
                    # Dynamic-shape calibration runs at the profile's opt shape only.
                    raise EngineBuildError(
                        f"calibration batches are {calibration.shape}, but the profile's opt "
                        f"shape for {calibration.input_name!r} is {want}"
                    )
                calibrator = make_entropy_calibrator(trt_mod, calibration, log)
                config.int8_calibrator = calibrator
                if profile:
                    # Dynamic shapes calibrate at this profile's opt shape.
                    config.set_calibration_profile(opt_profile)
            elif calibration is not None:
                log("warning", f"{onnx_file.name} has Q/DQ nodes; calibration data ignored")

    if flavour == "tensorrt_rtx" and compute_capabilities:
        rtx_config: Any = config  # RTX-only API, absent from the tensorrt stubs
        rtx_config.num_compute_capabilities = len(compute_capabilities)
        for index, cc in enumerate(compute_capabilities):
            member = getattr(trt_mod.ComputeCapability, cc, None)
            if member is None or not rtx_config.set_compute_capability(member, index):
                known = [m for m in trt_mod.ComputeCapability.__members__ if m != "NONE"]
                raise EngineBuildError(f"{desc} cannot target {cc}; it supports {known}")

    timing_cache: trt.ITimingCache | None = None
    cache_file = Path(timing_cache_path) if timing_cache_path is not None else None
    if cache_file is not None and flavour == "tensorrt":
        timing_cache = _attach_timing_cache(config, cache_file, log)

    log(
        "info",
        f"building {precision} engine for {onnx_file.name} with {desc} "
        f"({'strongly' if strongly_typed else 'weakly'} typed, workspace "
        f"{workspace_bytes / 2**20:.0f} MiB)",
    )
    start = time.perf_counter()
    serialized: trt.IHostMemory | None = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise EngineBuildError(
            f"{desc} build_serialized_network returned None for {onnx_file.name} "
            f"({precision}){_errors(logger)}"
        )
    engine_bytes = bytes(memoryview(serialized))
    del serialized, calibrator
    if not engine_bytes:
        raise EngineBuildError(f"{desc} produced an empty engine for {onnx_file.name}")
    log(
        "info",
        f"built {onnx_file.name} ({precision}) in {seconds:.1f} s, "
        f"{len(engine_bytes) / 2**20:.1f} MiB",
    )

    if timing_cache is not None and cache_file is not None:
        try:
            atomic_write_bytes(cache_file, memoryview(config.get_timing_cache().serialize()))
        except OSError as exc:  # a read-only cache dir must not fail a good build
            log("warning", f"could not save timing cache {cache_file}: {exc}")
    return _BuildOutput(engine_bytes, net_io, seconds)


def _attach_timing_cache(
    config: trt.IBuilderConfig, cache_file: Path, log: LogFn
) -> trt.ITimingCache | None:
    """Load ``cache_file`` (or start empty) and attach it; the config must outlive the build."""
    data = b""
    if cache_file.is_file():
        data = cache_file.read_bytes()
    cache: trt.ITimingCache | None = None
    try:
        cache = config.create_timing_cache(data)
        # ignore_mismatch=False: a cache from another GPU/version is refused, not trusted.
        if cache is None or not config.set_timing_cache(cache, False):
            raise ValueError("refused")
    except (RuntimeError, ValueError, TypeError) as exc:
        if data:
            log("warning", f"timing cache {cache_file} unusable ({exc}); starting a new one")
        cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, False):
            log("warning", "could not attach an empty timing cache; building without one")
            return None
    return cache


# --------------------------------------------------------------------------- load


def load_engine(
    engine_bytes: bytes | bytearray | memoryview,
    *,
    flavour: str = "tensorrt",
    log: LogFn | None = None,
) -> trt.ICudaEngine:
    """Deserialize an engine. The Python bindings keep the runtime alive with the engine.

    Raises:
        EngineLoadError: deserialization returned None (built by another TensorRT version or
            for another GPU, corrupt plan, no GPU); the message carries TensorRT's errors and,
            for TensorRT-RTX, ``get_engine_validity`` diagnostics.
    """
    trt_mod = import_tensorrt(flavour)
    logger = make_trt_logger(trt_mod, log)
    runtime: trt.Runtime = trt_mod.Runtime(logger)
    engine: trt.ICudaEngine | None = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        validity, reasons = _validity(trt_mod, runtime, engine_bytes)
        raise EngineLoadError(
            f"{trt_mod.__name__} {trt_version(trt_mod)} could not deserialize the engine "
            f"({memoryview(engine_bytes).nbytes} bytes){validity}{_errors(logger)}",
            reasons,
        )
    return engine


def _validity(trt_mod: ModuleType, runtime: Any, engine_bytes: Any) -> tuple[str, list[str]]:
    # TensorRT-RTX only: explains *why* an engine cannot run here (e.g. UNSUPPORTED_CC on SM90).
    check = getattr(runtime, "get_engine_validity", None)
    if check is None:
        return "", []
    try:
        validity, flags = check(engine_bytes)
        reasons = [
            name
            for name, member in trt_mod.EngineInvalidityDiagnostics.__members__.items()
            if int(flags) & int(member)
        ]
        return f"; validity {validity.name} {reasons}", reasons
    except Exception as exc:  # diagnostics must not mask the real error
        return f"; get_engine_validity failed: {exc!r}", []


# --------------------------------------------------------------------------- run


_TORCH_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


class TensorRTRunner:
    """Runs an engine on torch CUDA tensors: device pointers in, device tensors out.

    One execution context per runner; not thread-safe (use one runner per thread). Work is
    enqueued on the runner's own CUDA stream (TensorRT warns that the legacy default stream
    costs extra device synchronisations), ordered after the caller's current stream and
    before it again with stream waits, so there is no host synchronisation and no host copy:
    the outputs can be used directly by later torch work on the caller's stream.

    Args:
        engine: a deserialized engine (:func:`load_engine`).
        device: CUDA device the engine lives on; default the current one.
    """

    def __init__(self, engine: trt.ICudaEngine, *, device: int | str | None = None) -> None:
        import torch  # lazy: torch is heavy and optional for building

        if not torch.cuda.is_available():
            raise TensorRTUnavailable("TensorRTRunner needs PyTorch with CUDA")
        self._torch = torch
        dev = torch.device("cuda" if device is None else device)
        if dev.type != "cuda":
            raise ValueError(f"TensorRTRunner needs a CUDA device, got {dev}")
        # Pin the index: tensors report cuda:N, and "cuda" would never compare equal to it.
        self.device = torch.device(
            "cuda", torch.cuda.current_device() if dev.index is None else dev.index
        )
        self.engine = engine
        with torch.cuda.device(self.device):
            context: trt.IExecutionContext | None = engine.create_execution_context()
            self._stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
        if context is None:
            raise EngineLoadError("create_execution_context returned None (out of GPU memory?)")
        self._context = context
        self.io = engine_io(engine)
        self.input_names = [n for n, t in self.io.items() if t.mode == "input"]
        self.output_names = [n for n, t in self.io.items() if t.mode == "output"]
        self._dtypes: dict[str, torch.dtype] = {}
        for name, t in self.io.items():
            if t.dtype not in _TORCH_DTYPES:
                raise EngineIOMismatch(f"tensor {name!r} has dtype {t.dtype}, unsupported here")
            self._dtypes[name] = getattr(torch, _TORCH_DTYPES[t.dtype])

    def dtype(self, name: str) -> torch.dtype:
        """torch dtype an input must have / an output will have."""
        return self._dtypes[name]

    def infer(
        self, inputs: Mapping[str, torch.Tensor], *, stream: torch.cuda.Stream | None = None
    ) -> dict[str, torch.Tensor]:
        """Enqueue one inference; returns freshly allocated output tensors on ``self.device``.

        Args:
            inputs: CUDA tensors by input name, e.g. ``{"image": (1, 1, H, W) float32}``;
                shapes must lie within the engine's optimization profile.
            stream: run on this stream instead of the runner's own.

        Returns:
            ``{output name: tensor}``, ready for any work enqueued afterwards on the caller's
            current stream (or on ``stream``); call ``torch.cuda.synchronize()`` only if the
            host needs the values.
        """
        th = self._torch  # the runtime module (the name torch is for annotations)
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(f"missing inputs {missing}; engine inputs are {self.input_names}")
        ctx = self._context
        kept: list[torch.Tensor] = []
        for name in self.input_names:
            tensor = inputs[name]
            if tensor.device != self.device:
                raise ValueError(
                    f"input {name!r} is on {tensor.device}, engine runs on "
                    f"{self.device}; move it there (no host round trips here)"
                )
            if tensor.dtype != self._dtypes[name]:
                raise TypeError(
                    f"input {name!r} is {tensor.dtype}, engine wants {self._dtypes[name]}"
                )
            tensor = tensor.contiguous()  # TensorRT assumes dense row-major buffers
            if not ctx.set_input_shape(name, tuple(tensor.shape)):
                bounds = self.engine.get_tensor_profile_shape(name, 0)
                raise ValueError(
                    f"input {name!r} shape {tuple(tensor.shape)} is outside the "
                    f"profile min/opt/max {[_dims(b) for b in bounds]}"
                )
            ctx.set_tensor_address(name, tensor.data_ptr())
            kept.append(tensor)
        outputs: dict[str, torch.Tensor] = {}
        for name in self.output_names:
            shape = _dims(ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise RuntimeError(f"output {name!r} shape {shape} is data-dependent; unsupported")
            out = th.empty(shape, dtype=self._dtypes[name], device=self.device)
            ctx.set_tensor_address(name, out.data_ptr())
            outputs[name] = out

        caller = th.cuda.current_stream(self.device)
        run = stream if stream is not None else self._stream
        if run != caller:
            run.wait_stream(caller)  # inputs were produced on the caller's stream
        with th.cuda.device(self.device):  # TensorRT enqueues on the current CUDA device
            ok = ctx.execute_async_v3(run.cuda_stream)
        if not ok:
            raise RuntimeError(
                f"execute_async_v3 failed for inputs "
                f"{ {n: tuple(t.shape) for n, t in zip(self.input_names, kept, strict=True)} }"
            )
        if run != caller:
            for t in (*kept, *outputs.values()):
                t.record_stream(run)  # keep the caching allocator from reusing them too early
            caller.wait_stream(run)
        return outputs


# --------------------------------------------------------------------------- cache front end


def detect_cuda_device(index: int | None = None) -> tuple[str, str] | None:
    """``(device name, "major.minor")`` of a CUDA device via torch, or None without one."""
    try:
        import torch  # lazy and optional
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    dev = torch.cuda.current_device() if index is None else index
    major, minor = torch.cuda.get_device_capability(dev)
    return torch.cuda.get_device_name(dev), f"{major}.{minor}"


def _cuda_visible() -> bool | None:
    """Whether torch sees a CUDA device; None when torch is not installed (cannot tell)."""
    try:
        import torch  # lazy and optional
    except ImportError:
        return None
    return bool(torch.cuda.is_available())


def _target_identity(
    flavour: Flavour, ccs: tuple[str, ...], gpu: tuple[str, str] | None
) -> tuple[str, str]:
    if flavour == "tensorrt_rtx" and ccs != ("CURRENT",):
        # Ahead-of-time RTX engines run on any GPU of the targeted architectures.
        return "portable", ",".join(ccs) or "default"
    device = gpu or detect_cuda_device()
    if device is None:
        raise TensorRTUnavailable(
            "no CUDA device found (torch.cuda.is_available() is False): TensorRT builds for the "
            "GPU it runs on; pass gpu=(name, 'major.minor') if torch lacks CUDA, or use "
            "flavour='tensorrt_rtx' to build portable engines without a GPU"
        )
    return device


@dataclasses.dataclass
class CachedEngine:
    """Result of :func:`get_or_build_engine`.

    Attributes:
        engine: the deserialized engine; None in ``build_only`` mode.
        key: what the engine was built for.
        engine_path, sidecar_path: its files.
        built: True if it was (re)built in this call.
        reason: why it was (re)built, or that the cached one was valid.
        build_seconds: build time when built, else None.
        io: its I/O tensors.
    """

    engine: trt.ICudaEngine | None
    key: EngineKey
    engine_path: Path
    sidecar_path: Path
    built: bool
    reason: str
    build_seconds: float | None
    io: dict[str, TensorIO]


def get_or_build_engine(
    onnx_path: str | os.PathLike[str],
    engine_dir: str | os.PathLike[str],
    *,
    precision: str,
    profile: Profile | Sequence[Sequence[Any]],
    flavour: str = "tensorrt",
    expected_io: Mapping[str, IOSpec] | None = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache_path: str | os.PathLike[str] | None = None,
    calibration: CalibrationBatches | None = None,
    compute_capabilities: Sequence[str] | None = None,
    gpu: tuple[str, str] | None = None,
    force_rebuild: bool = False,
    build_only: bool = False,
    log: LogFn | None = None,
) -> CachedEngine:
    """Load the cached engine for this ONNX/settings, rebuilding it when anything changed.

    Steps: key (ONNX sha256, flavour, version, GPU, precision, profile) -> check cache ->
    on mismatch warn with the reason and rebuild -> atomically write engine then sidecar ->
    deserialize -> check I/O. A cached engine that fails to deserialize or has the wrong I/O is
    rebuilt once; a freshly built one that does raises (rebuilding would not help).

    Args:
        onnx_path: the model.
        engine_dir: cache directory (created if needed).
        precision, profile, flavour, workspace_bytes, calibration, compute_capabilities:
            see :func:`build_engine`.
        expected_io: ``{name: (mode, shape with -1)}`` the engine must have.
        timing_cache_path: default ``<engine_dir>/timing-<flavour>-<version>-<gpu>.cache``.
        gpu: ``(name, "major.minor")`` override when torch cannot see the device.
        force_rebuild: rebuild even if the cache is valid.
        build_only: build/validate files but do not deserialize (ahead-of-time builds,
            TensorRT-RTX without a GPU); ``CachedEngine.engine`` is then None and I/O is checked
            from the sidecar.
        log: ``log(level, message)``.
    """
    log = log or _default_log
    onnx_file = Path(onnx_path)
    directory = Path(engine_dir)
    trt_mod = import_tensorrt(flavour)
    if not build_only and _cuda_visible() is False:
        # Fail before a (possibly long) build: deserializing needs a GPU whatever the flavour.
        raise TensorRTUnavailable(
            f"no CUDA device: {flavour} engines cannot be loaded here; use build_only=True to "
            "build them ahead of time"
        )
    directory.mkdir(parents=True, exist_ok=True)
    flv = _flavour_of(trt_mod)
    prec = validate_precision(precision)
    prof = make_profile(profile)
    ccs = normalise_compute_capabilities(compute_capabilities)
    gpu_name, cc = _target_identity(flv, ccs, gpu)
    extra: list[tuple[str, str]] = []
    if calibration is not None:
        extra.append(("int8_calibration", calibration.fingerprint()))
    key = EngineKey(
        onnx_sha256=sha256_file(onnx_file),
        trt_flavour=flv,
        trt_version=trt_version(trt_mod),
        gpu_name=gpu_name,
        compute_capability=cc,
        precision=prec,
        profile=prof,
        extra=tuple(extra),
    )
    engine_path, sidecar_path = engine_paths(directory, onnx_file, key)
    if timing_cache_path is None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{flv}-{key.trt_version}-{gpu_name}-{cc}")
        timing_cache_path = directory / f"timing-{slug}.cache"

    if force_rebuild:
        decision = CacheDecision(True, "rebuild forced (force_rebuild=True)")
    else:
        decision = check_cached_engine(engine_path, sidecar_path, key)
        if decision.rebuild and decision.reason.startswith("engine file missing"):
            why = explain_missing_engine(directory, onnx_file, key)
            decision = CacheDecision(
                True,
                f"{decision.reason}; {why}" if why else f"no cached engine yet: {engine_path.name}",
            )

    built = False
    build_seconds: float | None = None
    engine_bytes: bytes | None = None
    io: dict[str, TensorIO] = {}
    for attempt in range(2):
        if decision.rebuild:
            level = "info" if decision.reason.startswith("no cached engine yet") else "warning"
            log(level, f"building TensorRT engine {engine_path.name}: {decision.reason}")
            out = _build(
                onnx_file,
                profile=prof,
                precision=prec,
                trt_mod=trt_mod,
                workspace_bytes=workspace_bytes,
                timing_cache_path=timing_cache_path if flv == "tensorrt" else None,
                calibration=calibration,
                compute_capabilities=ccs,
                log=log,
            )
            engine_bytes, io, build_seconds, built = out.engine_bytes, out.io, out.seconds, True
            # Engine first, sidecar second: a crash in between leaves a sidecar whose size/sha
            # no longer match, which check_cached_engine reports, never a trusted bad engine.
            atomic_write_bytes(engine_path, engine_bytes)
            write_sidecar(
                sidecar_path,
                key,
                engine_bytes,
                extra_info={
                    "onnx_path": str(onnx_file),
                    "build_seconds": round(out.seconds, 3),
                    "workspace_bytes": int(workspace_bytes),
                    "io": {n: t.to_json() for n, t in out.io.items()},
                },
            )
            log("info", f"wrote {engine_path} ({len(engine_bytes)} bytes)")
        else:
            engine_bytes = engine_path.read_bytes()
            try:
                doc = read_sidecar(sidecar_path)
                io = {n: TensorIO.from_json(n, d) for n, d in doc.get("io", {}).items()}
            except (OSError, SidecarError, KeyError, TypeError, ValueError) as exc:
                decision = CacheDecision(True, f"sidecar unreadable: {exc}")
                continue
            # Re-hash the bytes actually used: another process may have replaced the file.
            if sha256_bytes(engine_bytes) != doc["engine_sha256"]:
                decision = CacheDecision(True, "engine sha256 mismatch: changed while loading")
                continue
            log("info", f"using cached TensorRT engine {engine_path.name}")

        if build_only:
            problems = io_mismatches(io, expected_io) if (expected_io and io) else []
            if problems:
                if built:
                    raise EngineIOMismatch(
                        f"{onnx_file.name} I/O differs from expected: {problems}"
                    )
                decision = CacheDecision(True, f"engine I/O mismatch: {problems}")
                continue
            return CachedEngine(
                None, key, engine_path, sidecar_path, built, decision.reason, build_seconds, io
            )

        try:
            engine = load_engine(engine_bytes, flavour=flv, log=log)
        except EngineLoadError as exc:
            if built or attempt or _ENVIRONMENT_DIAGNOSTICS.intersection(exc.diagnostics):
                raise
            decision = CacheDecision(True, f"cached engine failed to deserialize: {exc}")
            continue
        io = engine_io(engine)
        problems = io_mismatches(io, expected_io) if expected_io else []
        if problems:
            if built or attempt:
                raise EngineIOMismatch(
                    f"freshly built engine for {onnx_file.name} has unexpected I/O: {problems}"
                )
            decision = CacheDecision(True, f"engine I/O mismatch: {problems}")
            continue
        return CachedEngine(
            engine, key, engine_path, sidecar_path, built, decision.reason, build_seconds, io
        )
    raise EngineBuildError(f"could not obtain a valid engine for {onnx_file}: {decision.reason}")
