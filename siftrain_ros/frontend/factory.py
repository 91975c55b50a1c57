"""Choosing and building a network backend by name: ``auto``, ``tensorrt``, ``onnxruntime`` or
``torch``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .backend import DerainBackend, TorchBackend
from .weights import load_derain_nets

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16", "int8")


def make_backend(name: str = "auto", *, precision: str = "fp32",
                 device: str | torch.device = "cpu", model: str = "ours", preset: str = "lite",
                 weights_dir: Path | None = None, engine_dir: Path | None = None,
                 log: Callable[[str], None] = print) -> DerainBackend:
    """Build the backend ``name`` for the shipped (or ``weights_dir``) weights.

    Raises:
        ValueError: unknown backend or precision, or a combination the backend cannot run.
        MissingWeightsError: weights missing or unreadable.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name in ("tensorrt", "onnxruntime"):
        raise ValueError(f"backend {name!r} is not available yet in this build (issue 4)")
    if name == "auto":
        log("backend auto: using torch (tensorrt and onnxruntime backends not built yet)")
    detect_net, describe_net = load_derain_nets(model, preset, weights_dir)
    return TorchBackend(detect_net, describe_net, device=device, precision=precision)
