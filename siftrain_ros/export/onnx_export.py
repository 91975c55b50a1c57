"""Export DPRNet / GGIRNet to ONNX with a dynamic image size, and keep exports in step with
the weights they came from.

Each graph maps input ``image`` (N, 1, H, W) float in 0..1 to output ``derained`` of the same
shape. N is dynamic only because ``torch.export`` specialises an example size of 1 to a
constant; every backend runs N = 1 (the TensorRT profile pins it to 1). The fp16 variant has
fp16 input, weights and output: strongly typed TensorRT (TensorRT 11, TensorRT-RTX) takes its
precision from the ONNX, so fp16 needs its own file.

The exported file carries ``metadata_props`` (weights sha256, net, preset, precision, export
version); :func:`ensure_onnx` re-exports when they no longer match, so a retrained network never
runs through a stale graph.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..engines.cache import sha256_file

INPUT_NAME = "image"
OUTPUT_NAME = "derained"
#: Bumped when the export recipe changes (names, opset, dynamic axes): forces re-export.
EXPORT_VERSION = "1"
ONNX_PRECISIONS = ("fp32", "fp16")

#: ONNX operators the exported nets may use; every one is supported by TensorRT's ONNX parser
#: (onnx-tensorrt operators.md) with the types used here. The check catches an exporter or
#: architecture change that would make the graph unbuildable before TensorRT is ever run.
TENSORRT_OPS = frozenset({
    "Add", "Cast", "Concat", "Constant", "Conv", "DepthToSpace", "Div", "Gather",
    "GlobalAveragePool", "Mul", "Pad", "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid",
    "Slice", "SpaceToDepth", "Squeeze", "Sub", "Transpose", "Unsqueeze",
})

_META_PREFIX = "siftrain."


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's warnings and log lines (pytree, missing torchvision): noise to a
    user, who gets one line per export from :func:`ensure_onnx` instead."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class OnnxFileError(ValueError):
    """An ONNX file is missing, unreadable, invalid or uses operators TensorRT lacks."""


def onnx_path(directory: Path, name: str, preset: str = "lite", precision: str = "fp32") -> Path:
    """``<dir>/<name>_<preset>.onnx`` for fp32, ``<dir>/<name>_<preset>.fp16.onnx`` for fp16."""
    if precision not in ONNX_PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {ONNX_PRECISIONS}, got {precision!r}")
    suffix = "" if precision == "fp32" else f".{precision}"
    return Path(directory) / f"{name}_{preset}{suffix}.onnx"


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The ``siftrain.*`` metadata of an exported graph (prefix removed).

    Raises:
        OnnxFileError: the file is missing or not a readable ONNX model.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxFileError(f"ONNX file {path} not found (run `siftrain export-onnx`)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf DecodeError, OSError: all mean "unreadable"
        raise OnnxFileError(f"ONNX file {path} is unreadable: {error}") from error
    return {p.key[len(_META_PREFIX):]: p.value for p in model.metadata_props
            if p.key.startswith(_META_PREFIX)}


def check_onnx(path: Path, allowed_ops: frozenset[str] = TENSORRT_OPS) -> list[str]:
    """Run ``onnx.checker`` (full check) and the operator allow-list on ``path``.

    Returns:
        The sorted operator types the graph uses.

    Raises:
        OnnxFileError: unreadable, invalid, or an operator outside ``allowed_ops``.
    """
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:
        raise OnnxFileError(f"ONNX file {path} failed onnx.checker: {error}") from error
    ops = sorted({n.op_type for n in model.graph.node})
    extra = sorted(set(ops) - allowed_ops)
    if extra:
        raise OnnxFileError(f"ONNX file {path} uses operators outside the TensorRT allow-list: "
                            f"{extra}")
    return ops


def export_net(net: torch.nn.Module, path: Path, *, precision: str = "fp32",
               metadata: dict[str, str] | None = None,
               allowed_ops: frozenset[str] = TENSORRT_OPS) -> Path:
    """Export one image-to-image network to ONNX at ``path`` (atomic: temp file + rename).

    Args:
        net: maps (N, 1, H, W) to (N, 1, H, W); copied, never modified.
        path: destination ``.onnx`` file (parent created).
        precision: ``fp32``, or ``fp16`` for a graph with fp16 input, weights and output.
        metadata: stored as ``siftrain.<key>`` metadata_props.
        allowed_ops: operator allow-list checked after export.

    Raises:
        OnnxFileError: the exported graph fails the checker or the allow-list.
    """
    import onnx

    if precision not in ONNX_PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {ONNX_PRECISIONS}, got {precision!r}")
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = copy.deepcopy(net).eval().to(device="cpu", dtype=dtype)
    # Batch 2: torch.export specialises example dims of size 1 to constants. Named dims are
    # dynamic without range constraints the exporter could not prove.
    example = torch.rand(2, 1, 64, 96).to(dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with quiet_exporter():
            torch.onnx.export(model, (example,), str(tmp), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME],
                              dynamic_shapes={"x": {0: "batch", 2: "height", 3: "width"}},
                              dynamo=True, external_data=False, verbose=False)
        proto = onnx.load(str(tmp))
        for key, value in sorted((metadata or {}).items()):
            proto.metadata_props.add(key=_META_PREFIX + key, value=str(value))
        onnx.save_model(proto, str(tmp))
        check_onnx(tmp, allowed_ops)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _weights_fingerprint(path: Path) -> str:
    return sha256_file(path) if path.is_file() else hashlib.sha256(b"missing").hexdigest()


def ensure_onnx(name: str, preset: str = "lite", *, weights_dir: Path | None = None,
                out_dir: Path, precision: str = "fp32",
                log: Callable[[str], None] = print) -> Path:
    """The ONNX graph of network ``name`` (dprnet, ggirnet, l1) for the current weights.

    Reuses ``onnx_path(out_dir, ...)`` when its metadata matches the weights file and export
    recipe; otherwise (missing, unreadable, stale) exports it and logs why.

    Raises:
        MissingWeightsError: the weights are missing or unreadable.
    """
    from ..frontend.weights import load_net, weights_path

    weights = weights_path(name, preset, weights_dir)
    target = onnx_path(out_dir, name, preset, precision)
    wanted = {"net": name, "preset": preset, "precision": precision,
              "export_version": EXPORT_VERSION}
    net = load_net(name, preset, weights_dir)  # raises MissingWeightsError first, by design
    wanted["weights_sha256"] = _weights_fingerprint(weights)
    reason = f"no ONNX export yet at {target}"
    if target.is_file():
        try:
            meta = read_onnx_metadata(target)
        except OnnxFileError as error:
            reason = f"{error}; re-exporting"
        else:
            changed = sorted(k for k, v in wanted.items() if meta.get(k) != v)
            if not changed:
                return target
            reason = f"ONNX {target.name} is stale ({', '.join(changed)} changed)"
    log(f"exporting {name} ({preset}, {precision}) to ONNX: {reason}")
    return export_net(net, target, precision=precision, metadata=wanted)
