"""ONNX export of the deraining networks (and the experimental one-graph front half)."""

from .onnx_export import (
    EXPORT_VERSION,
    INPUT_NAME,
    OUTPUT_NAME,
    TENSORRT_OPS,
    OnnxFileError,
    check_onnx,
    ensure_onnx,
    export_net,
    onnx_path,
    read_onnx_metadata,
)

__all__ = [
    "EXPORT_VERSION",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "TENSORRT_OPS",
    "OnnxFileError",
    "check_onnx",
    "ensure_onnx",
    "export_net",
    "onnx_path",
    "read_onnx_metadata",
]
