"""TensorRT engines for the CNNs: an engine cache (pure Python) and a TensorRT backend.

Importing this package imports neither TensorRT nor torch; :mod:`.tensorrt_backend` loads
``tensorrt`` or ``tensorrt_rtx`` on first use through :func:`import_tensorrt`.
"""

from .cache import (
    FLAVOURS,
    PRECISIONS,
    CacheDecision,
    EngineKey,
    SidecarError,
    atomic_write_bytes,
    atomic_write_json,
    check_cached_engine,
    engine_paths,
    image_profile,
    make_profile,
    read_sidecar,
    sha256_file,
    validate_precision,
    write_sidecar,
)
from .tensorrt_backend import (
    CachedEngine,
    CalibrationBatches,
    EngineBuildError,
    EngineIOMismatch,
    EngineLoadError,
    OnnxParseError,
    TensorRTRunner,
    TensorRTUnavailable,
    build_engine,
    check_engine_io,
    get_or_build_engine,
    import_tensorrt,
    load_engine,
)

__all__ = [
    "FLAVOURS",
    "PRECISIONS",
    "CacheDecision",
    "CachedEngine",
    "CalibrationBatches",
    "EngineBuildError",
    "EngineIOMismatch",
    "EngineKey",
    "EngineLoadError",
    "OnnxParseError",
    "SidecarError",
    "TensorRTRunner",
    "TensorRTUnavailable",
    "atomic_write_bytes",
    "atomic_write_json",
    "build_engine",
    "check_cached_engine",
    "check_engine_io",
    "engine_paths",
    "get_or_build_engine",
    "image_profile",
    "import_tensorrt",
    "load_engine",
    "make_profile",
    "read_sidecar",
    "sha256_file",
    "validate_precision",
    "write_sidecar",
]
