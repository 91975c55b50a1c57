"""Engine cache: what a serialized TensorRT engine depends on, and whether a cached one is usable.

Pure Python on purpose (no TensorRT import), so the cache rules are testable on any machine.

A cached engine is a pair of files in the engine directory::

    <model stem>.<precision>.<12-hex key hash>.engine        serialized engine (plan)
    <model stem>.<precision>.<12-hex key hash>.engine.json   JSON sidecar

The sidecar records the full :class:`EngineKey` (everything that changes the engine: ONNX
sha256, TensorRT flavour and version, GPU, precision, input profile) plus the engine file's
size and sha256. :func:`check_cached_engine` compares it with the key wanted now and says
exactly what changed, so a stale or damaged engine is rebuilt with a clear reason instead of
failing inside ``deserialize_cuda_engine`` ("Version tag does not match", "engine plan file is
generated on an incompatible device"). Both files are written with :func:`atomic_write_bytes`
(temp file in the same directory + fsync + ``os.replace``), so an interrupted build never
leaves a half-written engine under the final name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

Precision = Literal["fp32", "fp16", "int8"]
Flavour = Literal["tensorrt", "tensorrt_rtx"]

#: Allowed precisions, as accepted by :func:`validate_precision` (Autoware uses the same set).
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
#: Allowed TensorRT flavours: NVIDIA TensorRT proper, or TensorRT for RTX.
FLAVOURS: tuple[Flavour, ...] = get_args(Flavour)

#: A tensor shape; -1 is never allowed inside a profile (profiles are concrete bounds).
Shape = tuple[int, ...]
#: One optimization-profile entry: (input name, min shape, opt shape, max shape).
ProfileEntry = tuple[str, Shape, Shape, Shape]
#: A whole optimization profile, sorted by input name so equal profiles compare equal.
Profile = tuple[ProfileEntry, ...]

#: Bumped when the sidecar layout changes; an older sidecar then forces a rebuild.
SIDECAR_SCHEMA = 1
ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".engine.json"
_HASH_CHARS = 12
_CHUNK = 1 << 20  # 1 MiB reads keep sha256 of a 100 MB engine at constant memory


class SidecarError(ValueError):
    """A sidecar file exists but cannot be used (truncated, invalid JSON, wrong fields)."""


def validate_precision(precision: str) -> Precision:
    """Return ``precision`` normalised to lower case, or raise ``ValueError``.

    Raises:
        ValueError: if it is not one of ``fp32``, ``fp16``, ``int8``; the message lists them.
    """
    value = str(precision).strip().lower()
    if value not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    return value


def validate_flavour(flavour: str) -> Flavour:
    """Return ``flavour`` if it is ``tensorrt`` or ``tensorrt_rtx``, else raise ``ValueError``."""
    if flavour not in FLAVOURS:
        raise ValueError(
            f"unknown TensorRT flavour {flavour!r}; expected one of {', '.join(FLAVOURS)}"
        )
    return flavour


def _shape(value: Iterable[Any], what: str) -> Shape:
    dims = tuple(int(d) for d in value)
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"{what}: profile shapes need positive dimensions, got {dims}")
    return dims


def make_profile(entries: Iterable[Sequence[Any]]) -> Profile:
    """Normalise ``[(name, min, opt, max), ...]`` (lists or tuples) into a sorted :data:`Profile`.

    Raises:
        ValueError: on rank mismatch, non-positive dims, or ``min <= opt <= max`` violated.
    """
    out: list[ProfileEntry] = []
    for entry in entries:
        if len(entry) != 4:
            raise ValueError(f"profile entry must be (name, min, opt, max), got {entry!r}")
        name = str(entry[0])
        lo, opt, hi = (_shape(entry[i], f"input {name!r}") for i in (1, 2, 3))
        if not len(lo) == len(opt) == len(hi):
            raise ValueError(f"input {name!r}: min/opt/max ranks differ: {lo}, {opt}, {hi}")
        if any(not a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
            raise ValueError(f"input {name!r}: need min <= opt <= max, got {lo}, {opt}, {hi}")
        out.append((name, lo, opt, hi))
    names = [e[0] for e in out]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate input names in profile: {names}")
    return tuple(sorted(out))


def image_profile(
    min_hw: tuple[int, int],
    opt_hw: tuple[int, int],
    max_hw: tuple[int, int],
    *,
    name: str = "image",
    channels: int = 1,
) -> Profile:
    """Profile for one NCHW image input of shape ``(1, channels, H, W)``, sizes in pixels."""
    return make_profile(
        [(name, (1, channels, *min_hw), (1, channels, *opt_hw), (1, channels, *max_hw))]
    )


def _fmt_profile(profile: Profile) -> str:
    def dims(s: Shape) -> str:
        return "x".join(map(str, s))

    return ", ".join(f"{n}: {dims(a)}..{dims(b)}..{dims(c)}" for n, a, b, c in profile)


@dataclasses.dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on. Two engines with equal keys are interchangeable.

    Attributes:
        onnx_sha256: hex sha256 of the ONNX file's bytes.
        trt_flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        trt_version: the module's ``__version__`` (e.g. ``"10.3.0.30"``); engines are not
            portable across TensorRT versions.
        gpu_name: CUDA device name (``"Orin"``, ``"NVIDIA GeForce RTX 4090"``), or
            ``"portable"`` for TensorRT-RTX engines built for a set of compute capabilities.
        compute_capability: ``"8.7"`` for a device-specific engine, or the TensorRT-RTX target
            list (``"SM86,SM89"``, ``"default"``).
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        profile: optimization profile, ``((name, min, opt, max), ...)`` shapes in elements.
        extra: other build inputs that change the engine, as sorted ``(name, value)`` pairs
            (e.g. the INT8 calibration data fingerprint).
    """

    onnx_sha256: str
    trt_flavour: Flavour
    trt_version: str
    gpu_name: str
    compute_capability: str
    precision: Precision
    profile: Profile
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Validate and normalise eagerly so a bad key fails where it is made, not at build.
        object.__setattr__(self, "precision", validate_precision(self.precision))
        object.__setattr__(self, "trt_flavour", validate_flavour(self.trt_flavour))
        object.__setattr__(self, "profile", make_profile(self.profile))
        object.__setattr__(self, "extra", tuple(sorted((str(k), str(v)) for k, v in self.extra)))
        if not re.fullmatch(r"[0-9a-f]{64}", self.onnx_sha256):
            raise ValueError(
                f"onnx_sha256 must be 64 lower-case hex chars, got {self.onnx_sha256!r}"
            )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists); inverse of :meth:`from_json_dict`."""
        return {
            "onnx_sha256": self.onnx_sha256,
            "trt_flavour": self.trt_flavour,
            "trt_version": self.trt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "profile": [[n, list(a), list(b), list(c)] for n, a, b, c in self.profile],
            "extra": [list(kv) for kv in self.extra],
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> EngineKey:
        """Rebuild a key from :meth:`to_json_dict` output.

        Raises:
            SidecarError: on missing or malformed fields.
        """
        try:
            return cls(
                onnx_sha256=str(data["onnx_sha256"]),
                trt_flavour=data["trt_flavour"],
                trt_version=str(data["trt_version"]),
                gpu_name=str(data["gpu_name"]),
                compute_capability=str(data["compute_capability"]),
                precision=data["precision"],
                profile=make_profile(data["profile"]),
                extra=tuple((str(k), str(v)) for k, v in data.get("extra", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SidecarError(f"malformed engine key in sidecar: {exc!r}") from exc

    def short_hash(self, n: int = _HASH_CHARS) -> str:
        """First ``n`` hex chars of the sha256 of the canonical JSON of this key."""
        canon = json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:n]


def diff_keys(cached: EngineKey, wanted: EngineKey) -> list[str]:
    """Human-readable differences between two keys, one phrase per changed field.

    The phrases are stable (tests and log readers grep them): ``ONNX changed``,
    ``precision changed``, ``profile changed``, ``TensorRT version changed``,
    ``TensorRT flavour changed``, ``GPU changed``, ``compute capability changed``,
    ``build options changed``.
    """
    out: list[str] = []
    if cached.onnx_sha256 != wanted.onnx_sha256:
        out.append(
            f"ONNX changed (sha256 {cached.onnx_sha256[:12]}... -> {wanted.onnx_sha256[:12]}...)"
        )
    if cached.precision != wanted.precision:
        out.append(f"precision changed ({cached.precision} -> {wanted.precision})")
    if cached.profile != wanted.profile:
        out.append(
            f"profile changed ({_fmt_profile(cached.profile)} -> {_fmt_profile(wanted.profile)})"
        )
    if cached.trt_flavour != wanted.trt_flavour:
        out.append(f"TensorRT flavour changed ({cached.trt_flavour} -> {wanted.trt_flavour})")
    if cached.trt_version != wanted.trt_version:
        out.append(f"TensorRT version changed ({cached.trt_version} -> {wanted.trt_version})")
    if cached.gpu_name != wanted.gpu_name:
        out.append(f"GPU changed ({cached.gpu_name!r} -> {wanted.gpu_name!r})")
    if cached.compute_capability != wanted.compute_capability:
        out.append(
            f"compute capability changed ({cached.compute_capability} -> "
            f"{wanted.compute_capability})"
        )
    if cached.extra != wanted.extra:
        out.append(f"build options changed ({dict(cached.extra)} -> {dict(wanted.extra)})")
    return out


def _safe_stem(onnx_path: str | os.PathLike[str]) -> str:
    # Keep file names portable and shell-friendly whatever the ONNX file is called.
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(onnx_path).stem) or "model"


def engine_paths(
    engine_dir: str | os.PathLike[str], onnx_path: str | os.PathLike[str], key: EngineKey
) -> tuple[Path, Path]:
    """``(engine_path, sidecar_path)`` for ``key``: ``<stem>.<precision>.<hash>.engine[.json]``.

    The hash covers the whole key, so variants (fp16 and fp32, two GPUs sharing a directory)
    live side by side and switching back to one does not rebuild it.
    """
    base = f"{_safe_stem(onnx_path)}.{key.precision}.{key.short_hash()}"
    directory = Path(engine_dir)
    return directory / f"{base}{ENGINE_SUFFIX}", directory / f"{base}{SIDECAR_SUFFIX}"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex sha256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable (POSIX); not possible on Windows, and not fatal anywhere.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    Writes a temp file in the same directory (``os.replace`` is only atomic within one file
    system), fsyncs it, then renames it over ``path``. On any error, including
    ``KeyboardInterrupt`` mid-write, the temp file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600 files; engines are shared artefacts (other users, containers).
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """:func:`atomic_write_bytes` of ``obj`` as indented, key-sorted UTF-8 JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def write_sidecar(
    sidecar_path: str | os.PathLike[str],
    key: EngineKey,
    engine_bytes: bytes | bytearray | memoryview,
    *,
    extra_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Atomically write the sidecar for an engine whose bytes are ``engine_bytes``.

    Args:
        sidecar_path: where to write (see :func:`engine_paths`).
        key: the key the engine was built for.
        engine_bytes: the serialized engine exactly as written to disk; its length and
            sha256 are recorded so a truncated or corrupted engine is caught before
            deserialization.
        extra_info: informational fields (build seconds, I/O tensors, ONNX path); never
            used for cache decisions.

    Returns:
        The dict written.
    """
    doc: dict[str, Any] = dict(extra_info or {})
    doc.update(
        {
            "schema": SIDECAR_SCHEMA,
            "key": key.to_json_dict(),
            "key_hash": key.short_hash(),
            "engine_size": memoryview(engine_bytes).nbytes,
            "engine_sha256": sha256_bytes(engine_bytes),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    atomic_write_json(sidecar_path, doc)
    return doc


def read_sidecar(sidecar_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and minimally validate a sidecar.

    Raises:
        FileNotFoundError: if it does not exist.
        SidecarError: if it is truncated, not JSON, or lacks ``schema``/``key``/
            ``engine_size``/``engine_sha256``.
    """
    raw = Path(sidecar_path).read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"invalid JSON ({len(raw)} bytes; truncated?): {exc}") from exc
    if not isinstance(doc, dict):
        raise SidecarError(f"expected a JSON object, got {type(doc).__name__}")
    missing = [k for k in ("schema", "key", "engine_size", "engine_sha256") if k not in doc]
    if missing:
        raise SidecarError(f"missing fields {missing}")
    if not isinstance(doc["engine_size"], int) or not isinstance(doc["engine_sha256"], str):
        raise SidecarError("engine_size must be an int and engine_sha256 a string")
    return doc


@dataclasses.dataclass(frozen=True)
class CacheDecision:
    """Whether to (re)build, and why, in words fit for a log line."""

    rebuild: bool
    reason: str


def check_cached_engine(
    engine_path: str | os.PathLike[str],
    sidecar_path: str | os.PathLike[str],
    expected_key: EngineKey,
    *,
    verify_sha256: bool = True,
) -> CacheDecision:
    """Decide whether the cached engine at ``engine_path`` can be used for ``expected_key``.

    Checks, cheapest first: engine file present, sidecar present, sidecar readable, sidecar
    schema, key fields (all differences listed), engine size, engine sha256. Never
    deserializes anything, so it is safe to call without TensorRT or a GPU.

    Reason phrases (stable, for grepping): ``engine file missing``, ``sidecar missing``,
    ``sidecar unreadable``, ``sidecar schema changed``, the :func:`diff_keys` phrases,
    ``engine size mismatch``, ``engine sha256 mismatch``; ``cached engine is valid`` when no
    rebuild is needed.

    Args:
        verify_sha256: hash the engine (about 0.1 s per 100 MB); the size check alone
            catches truncation but not bit rot or a same-size overwrite.
    """
    engine = Path(engine_path)
    sidecar = Path(sidecar_path)
    if not engine.is_file():
        return CacheDecision(True, f"engine file missing: {engine}")
    if not sidecar.is_file():
        return CacheDecision(True, f"sidecar missing: {sidecar} (cannot verify {engine.name})")
    try:
        doc = read_sidecar(sidecar)
        if doc["schema"] != SIDECAR_SCHEMA:
            return CacheDecision(
                True, f"sidecar schema changed ({doc['schema']} -> {SIDECAR_SCHEMA}): {sidecar}"
            )
        cached_key = EngineKey.from_json_dict(doc["key"])
    except SidecarError as exc:
        return CacheDecision(True, f"sidecar unreadable: {sidecar}: {exc}")
    except OSError as exc:
        return CacheDecision(True, f"sidecar unreadable: {sidecar}: {exc}")
    changes = diff_keys(cached_key, expected_key)
    if changes:
        return CacheDecision(True, "; ".join(changes))
    size = engine.stat().st_size
    if size != doc["engine_size"]:
        return CacheDecision(
            True,
            f"engine size mismatch: {engine.name} has {size} bytes, sidecar recorded "
            f"{doc['engine_size']} (truncated or overwritten engine)",
        )
    if verify_sha256:
        actual = sha256_file(engine)
        if actual != doc["engine_sha256"]:
            return CacheDecision(
                True,
                f"engine sha256 mismatch: {engine.name} is {actual[:12]}..., sidecar recorded "
                f"{doc['engine_sha256'][:12]}... (corrupt engine file)",
            )
    return CacheDecision(False, f"cached engine is valid: {engine.name}")


def explain_missing_engine(
    engine_dir: str | os.PathLike[str], onnx_path: str | os.PathLike[str], key: EngineKey
) -> str | None:
    """Why there is no engine for ``key``: compare with the closest cached sibling, if any.

    Engine file names embed the key hash, so a changed ONNX or TensorRT upgrade shows up as
    "engine file missing". This looks at the sidecars of the same model stem and returns e.g.
    ``"closest cached engine dprnet.fp16.ab12....engine differs: ONNX changed (...)"`` so the
    log says what changed. ``None`` if there is no readable sibling.
    """
    directory = Path(engine_dir)
    best: tuple[int, str, list[str]] | None = None
    for sidecar in sorted(directory.glob(f"{_safe_stem(onnx_path)}.*{SIDECAR_SUFFIX}")):
        try:
            other = EngineKey.from_json_dict(read_sidecar(sidecar)["key"])
        except (OSError, SidecarError):
            continue
        changes = diff_keys(other, key)
        if changes and (best is None or len(changes) < best[0]):
            best = (len(changes), sidecar.name[: -len(".json")], changes)
    if best is None:
        return None
    return f"closest cached engine {best[1]} differs: {'; '.join(best[2])}"
