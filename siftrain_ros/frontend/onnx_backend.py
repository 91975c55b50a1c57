"""ONNX Runtime backend: the exported DPRNet/GGIRNet graphs on the CPU or CUDA execution
provider."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..export import INPUT_NAME, OUTPUT_NAME, OnnxFileError, read_onnx_metadata
from .backend import BackendError, DerainOutput

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or :class:`BackendError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise BackendError(f"onnxruntime is not installed ({error}); pip install "
                           f"onnxruntime (CPU) or onnxruntime-gpu (CUDA)") from error
    return onnxruntime


def providers_for(device: torch.device) -> list[str]:
    """Execution providers for ``device``.

    Raises:
        BackendError: CUDA asked for but this onnxruntime has no CUDA execution provider.
    """
    available = import_onnxruntime().get_available_providers()
    if device.type == "cuda":
        if CUDA_EP not in available:
            raise BackendError(f"onnxruntime on CUDA needs {CUDA_EP}, but this onnxruntime "
                               f"has only {available} (install onnxruntime-gpu)")
        return [CUDA_EP]  # no silent CPU fallback: a node placed on CPU would hide a problem
    return [CPU_EP]


def check_options(device: torch.device, precision: str) -> list[str]:
    """Validate a device/precision pair before anything is exported or loaded.

    Returns:
        The execution providers to use.

    Raises:
        BackendError: int8, an unknown precision, fp16 on CPU, or CUDA without the CUDA EP.
    """
    if precision == "int8":
        raise BackendError("precision int8 needs the tensorrt backend; onnxruntime runs "
                           "fp32 (CPU, CUDA) or fp16 (CUDA)")
    if precision not in ("fp32", "fp16"):
        raise BackendError(f"unknown precision {precision!r}; expected fp32 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise BackendError("precision fp16 with onnxruntime needs a CUDA device")
    return providers_for(device)


class OnnxRuntimeBackend:
    """Runs the two exported graphs with ONNX Runtime.

    On CPU, inputs and outputs are shared with torch through numpy (no copies). On CUDA the
    graphs read the frame and write their outputs in place in torch CUDA tensors via
    IOBinding, so nothing crosses to the host.

    Args:
        detect_onnx: DPRNet graph (``image`` -> ``derained``).
        describe_onnx: GGIRNet graph, or None when one network serves both (the l1 ablation).
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32``; ``fp16`` runs an fp16 graph and needs CUDA (the CPU provider has
            no fast fp16 convolutions).
        threads: intra-op threads on CPU; 0 lets onnxruntime choose (one per core).

    Raises:
        BackendError: missing/unreadable graph, unsupported precision or device.
    """

    name = "onnxruntime"

    def __init__(self, detect_onnx: Path, describe_onnx: Path | None = None, *,
                 device: str | torch.device = "cpu", precision: str = "fp32",
                 threads: int = 0, log: Callable[[str], None] = print):
        self.device = resolve_device(device)
        self.providers = check_options(self.device, precision)
        self.precision = precision
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._detect = self._session(Path(detect_onnx), threads)
        self._describe = (None if describe_onnx is None
                          else self._session(Path(describe_onnx), threads))
        log(f"onnxruntime backend on {self.providers[0]}: {Path(detect_onnx).name}"
            + (f", {Path(describe_onnx).name}" if describe_onnx is not None else ""))

    def _session(self, path: Path, threads: int) -> Any:
        ort = import_onnxruntime()
        try:
            meta = read_onnx_metadata(path)
        except OnnxFileError as error:
            raise BackendError(str(error)) from error
        if meta.get("precision", "fp32") != self.precision:
            raise BackendError(f"ONNX file {path} is {meta.get('precision', 'fp32')}, backend "
                               f"precision is {self.precision}; export the matching graph")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        # No busy-waiting between ops: a robot shares its cores with other nodes, and on the
        # 2-core CI machine under load spinning made the nets ~20% slower (docs/backends.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(path), options, providers=self.providers)
        except Exception as error:  # onnxruntime raises its own pybind exception types
            raise BackendError(f"onnxruntime cannot load {path}: {error}") from error
        names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
        if names != ([INPUT_NAME], [OUTPUT_NAME]):
            raise BackendError(f"ONNX file {path} has I/O {names}, expected "
                               f"([{INPUT_NAME!r}], [{OUTPUT_NAME!r}])")
        return session

    def _run(self, session: Any, image: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            out = session.run([OUTPUT_NAME], {INPUT_NAME: image.numpy()})[0]
            return torch.from_numpy(np.asarray(out))
        # CUDA: bind torch memory directly; the output has the input's shape.
        out = torch.empty_like(image)
        binding = session.io_binding()
        element = np.float16 if self._dtype == torch.float16 else np.float32
        index = self.device.index or 0
        binding.bind_input(INPUT_NAME, "cuda", index, element, tuple(image.shape),
                           image.data_ptr())
        binding.bind_output(OUTPUT_NAME, "cuda", index, element, tuple(out.shape),
                            out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # ORT runs on its own stream
        session.run_with_iobinding(binding)
        return out

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> DerainOutput:
        """Derain a (1, 1, H, W) float frame in 0..1; outputs are float32 on ``self.device``."""
        x = image.to(self.device, self._dtype).contiguous()
        detect = self._run(self._detect, x).float().clamp(0, 1)
        describe = (detect if self._describe is None
                    else self._run(self._describe, x).float().clamp(0, 1))
        return DerainOutput(detect=detect, describe=describe)
