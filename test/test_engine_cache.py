"""Engine cache rules with real files and no TensorRT: keys, sidecars, rebuild reasons, atomicity.

The last part drives ``get_or_build_engine`` with a fake TensorRT module and fake build/load
functions, to check the cache front end (build, reuse, rebuild once on bad I/O) anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import types
from pathlib import Path
from typing import Any

import pytest

from siftrain_ros.engines import cache
from siftrain_ros.engines import tensorrt_backend as backend
from siftrain_ros.engines.cache import (
    PRECISIONS,
    EngineKey,
    atomic_write_bytes,
    atomic_write_json,
    check_cached_engine,
    engine_paths,
    explain_missing_engine,
    image_profile,
    make_profile,
    read_sidecar,
    sha256_file,
    validate_precision,
    write_sidecar,
)

ENGINE_BYTES = bytes(range(256)) * 64  # 16 KiB stand-in for a serialized plan


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "dprnet.onnx"
    path.write_bytes(b"fake onnx model v1" * 100)
    return path


def make_key(onnx: Path, **changes: Any) -> EngineKey:
    fields: dict[str, Any] = {
        "onnx_sha256": sha256_file(onnx),
        "trt_flavour": "tensorrt",
        "trt_version": "10.3.0.30",
        "gpu_name": "Orin",
        "compute_capability": "8.7",
        "precision": "fp16",
        "profile": image_profile((240, 320), (480, 640), (720, 1280)),
    }
    fields.update(changes)
    return EngineKey(**fields)


def cache_engine(engine_dir: Path, onnx: Path, key: EngineKey) -> tuple[Path, Path]:
    """Write an engine + sidecar the way get_or_build_engine does."""
    engine_path, sidecar_path = engine_paths(engine_dir, onnx, key)
    atomic_write_bytes(engine_path, ENGINE_BYTES)
    write_sidecar(sidecar_path, key, ENGINE_BYTES)
    return engine_path, sidecar_path


@pytest.fixture
def cached(tmp_path: Path, onnx_file: Path) -> tuple[EngineKey, Path, Path]:
    key = make_key(onnx_file)
    engine_path, sidecar_path = cache_engine(tmp_path / "engines", onnx_file, key)
    return key, engine_path, sidecar_path


def test_unchanged_engine_is_reused(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert not decision.rebuild
    assert "cached engine is valid" in decision.reason


def test_changed_onnx_triggers_rebuild(
    cached: tuple[EngineKey, Path, Path], onnx_file: Path
) -> None:
    key, engine_path, sidecar_path = cached
    onnx_file.write_bytes(b"fake onnx model v2, retrained" * 100)
    new_key = make_key(onnx_file)
    assert new_key.onnx_sha256 != key.onnx_sha256
    decision = check_cached_engine(engine_path, sidecar_path, new_key)
    assert decision.rebuild
    assert "ONNX changed" in decision.reason
    assert key.onnx_sha256[:12] in decision.reason and new_key.onnx_sha256[:12] in decision.reason


def test_changed_precision_triggers_rebuild(
    cached: tuple[EngineKey, Path, Path], onnx_file: Path
) -> None:
    _, engine_path, sidecar_path = cached
    decision = check_cached_engine(engine_path, sidecar_path, make_key(onnx_file, precision="fp32"))
    assert decision.rebuild
    assert "precision changed (fp16 -> fp32)" in decision.reason


def test_changed_profile_triggers_rebuild(
    cached: tuple[EngineKey, Path, Path], onnx_file: Path
) -> None:
    _, engine_path, sidecar_path = cached
    wider = image_profile((240, 320), (480, 640), (1080, 1920))
    decision = check_cached_engine(engine_path, sidecar_path, make_key(onnx_file, profile=wider))
    assert decision.rebuild
    assert "profile changed" in decision.reason
    assert "1x1x720x1280" in decision.reason and "1x1x1080x1920" in decision.reason


def test_changed_tensorrt_version_triggers_rebuild(
    cached: tuple[EngineKey, Path, Path], onnx_file: Path
) -> None:
    _, engine_path, sidecar_path = cached
    upgraded = make_key(onnx_file, trt_version="10.7.0.23")
    decision = check_cached_engine(engine_path, sidecar_path, upgraded)
    assert decision.rebuild
    assert "TensorRT version changed (10.3.0.30 -> 10.7.0.23)" in decision.reason


def test_changed_gpu_triggers_rebuild(
    cached: tuple[EngineKey, Path, Path], onnx_file: Path
) -> None:
    _, engine_path, sidecar_path = cached
    other = make_key(onnx_file, gpu_name="NVIDIA GeForce RTX 3090", compute_capability="8.6")
    decision = check_cached_engine(engine_path, sidecar_path, other)
    assert decision.rebuild
    assert "GPU changed" in decision.reason
    assert "compute capability changed (8.7 -> 8.6)" in decision.reason


def test_every_change_is_listed(cached: tuple[EngineKey, Path, Path], onnx_file: Path) -> None:
    _, engine_path, sidecar_path = cached
    other = make_key(onnx_file, precision="int8", trt_version="11.0.0", trt_flavour="tensorrt")
    reason = check_cached_engine(engine_path, sidecar_path, other).reason
    assert "precision changed" in reason and "TensorRT version changed" in reason


def test_corrupt_engine_same_size_triggers_rebuild(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    data = bytearray(engine_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, different content
    engine_path.write_bytes(bytes(data))
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert decision.rebuild
    assert "engine sha256 mismatch" in decision.reason


def test_truncated_engine_triggers_rebuild(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    engine_path.write_bytes(ENGINE_BYTES[:1000])
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert decision.rebuild
    assert "engine size mismatch" in decision.reason
    assert "1000 bytes" in decision.reason and str(len(ENGINE_BYTES)) in decision.reason


def test_truncated_sidecar_triggers_rebuild(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    text = sidecar_path.read_bytes()
    sidecar_path.write_bytes(text[: len(text) // 2])
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert decision.rebuild
    assert "sidecar unreadable" in decision.reason
    assert "invalid JSON" in decision.reason


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"[1, 2, 3]",
        b'{"schema": 1}',
        b'{"schema": 1, "key": {}, "engine_size": 1, "engine_sha256": "00"}',
        b"\xff\xfe not utf-8",
    ],
    ids=["empty", "not-an-object", "missing-fields", "malformed-key", "binary"],
)
def test_invalid_sidecar_triggers_rebuild(
    cached: tuple[EngineKey, Path, Path], content: bytes
) -> None:
    key, engine_path, sidecar_path = cached
    sidecar_path.write_bytes(content)
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert decision.rebuild
    assert "sidecar unreadable" in decision.reason


def test_missing_sidecar_triggers_rebuild(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    sidecar_path.unlink()
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert decision.rebuild
    assert "sidecar missing" in decision.reason


def test_missing_engine_triggers_rebuild(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    engine_path.unlink()
    decision = check_cached_engine(engine_path, sidecar_path, key)
    assert decision.rebuild
    assert "engine file missing" in decision.reason


def test_old_sidecar_schema_triggers_rebuild(cached: tuple[EngineKey, Path, Path]) -> None:
    key, engine_path, sidecar_path = cached
    doc = json.loads(sidecar_path.read_text())
    doc["schema"] = 0
    sidecar_path.write_text(json.dumps(doc))
    assert "sidecar schema changed" in check_cached_engine(engine_path, sidecar_path, key).reason


def test_sidecar_records_key_size_and_sha(cached: tuple[EngineKey, Path, Path]) -> None:
    key, _, sidecar_path = cached
    doc = read_sidecar(sidecar_path)
    assert doc["engine_size"] == len(ENGINE_BYTES)
    assert doc["engine_sha256"] == hashlib.sha256(ENGINE_BYTES).hexdigest()
    assert EngineKey.from_json_dict(doc["key"]) == key
    assert doc["key_hash"] == key.short_hash()


def test_engine_paths_are_readable_and_key_specific(onnx_file: Path, tmp_path: Path) -> None:
    key = make_key(onnx_file)
    engine_path, sidecar_path = engine_paths(tmp_path, onnx_file, key)
    assert engine_path.name == f"dprnet.fp16.{key.short_hash()}.engine"
    assert sidecar_path.name == engine_path.name + ".json"
    assert engine_paths(tmp_path, onnx_file, make_key(onnx_file)) == (engine_path, sidecar_path)
    fp32_path, _ = engine_paths(tmp_path, onnx_file, make_key(onnx_file, precision="fp32"))
    assert fp32_path.name.startswith("dprnet.fp32.") and fp32_path != engine_path
    odd, _ = engine_paths(tmp_path, tmp_path / "my model (v2).onnx", key)
    assert odd.name.startswith("my_model_v2_.fp16.")


def test_missing_engine_is_explained_by_closest_sibling(
    cached: tuple[EngineKey, Path, Path], onnx_file: Path
) -> None:
    _, engine_path, _ = cached
    upgraded = make_key(onnx_file, trt_version="10.7.0.23")
    why = explain_missing_engine(engine_path.parent, onnx_file, upgraded)
    assert why is not None
    assert engine_path.name in why and "TensorRT version changed" in why
    other_model = onnx_file.with_name("ggirnet.onnx")
    assert explain_missing_engine(engine_path.parent, other_model, upgraded) is None


def test_key_json_round_trip_and_hash_stability(onnx_file: Path) -> None:
    key = make_key(onnx_file, extra=(("int8_calibration", "abc"),))
    again = EngineKey.from_json_dict(json.loads(json.dumps(key.to_json_dict())))
    assert again == key and again.short_hash() == key.short_hash()
    assert make_key(onnx_file).short_hash() != key.short_hash()


@pytest.mark.parametrize("bad", ["fp8", "float16", "", "int4"])
def test_unknown_precision_lists_allowed(bad: str, onnx_file: Path) -> None:
    with pytest.raises(ValueError, match="fp32, fp16, int8"):
        validate_precision(bad)
    with pytest.raises(ValueError, match="fp32, fp16, int8"):
        make_key(onnx_file, precision=bad)


def test_precision_is_normalised() -> None:
    assert validate_precision(" FP16 ") == "fp16"
    assert set(PRECISIONS) == {"fp32", "fp16", "int8"}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("image", (1, 1, 64, 64), (1, 1, 32, 32), (1, 1, 128, 128))], "min <= opt <= max"),
        ([("image", (1, 1, 64), (1, 1, 64, 64), (1, 1, 64, 64))], "ranks differ"),
        ([("image", (1, 1, 0, 64), (1, 1, 64, 64), (1, 1, 64, 64))], "positive"),
        ([("image", (1, 1, 8, 8), (1, 1, 8, 8), (1, 1, 8, 8))] * 2, "duplicate"),
        ([("image", (1, 1, 8, 8))], "name, min, opt, max"),
    ],
)
def test_bad_profiles_are_rejected(entries: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_profile(entries)


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.engine"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    atomic_write_json(tmp_path / "sub" / "model.engine.json", {"a": [1, 2]})
    assert target.read_bytes() == b"second"
    assert json.loads((tmp_path / "sub" / "model.engine.json").read_text()) == {"a": [1, 2]}
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.engine", "model.engine.json"]


@pytest.mark.parametrize("fail_in", ["os.replace", "os.fsync"])
def test_interrupted_write_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_in: str
) -> None:
    target = tmp_path / "model.engine"
    atomic_write_bytes(target, b"old engine")

    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("simulated Ctrl-C during the engine write")

    monkeypatch.setattr(cache.os, fail_in.split(".")[1], boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new engine, never completed")
    monkeypatch.undo()
    assert target.read_bytes() == b"old engine"
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]


# --------------------------------------------------------------------------- cache front end


class FakeEngine:
    def __init__(self, io: dict[str, backend.TensorIO]) -> None:
        self.io = io


IO_OK = {
    "image": backend.TensorIO("image", "input", (1, 1, -1, -1), "FLOAT"),
    "prob": backend.TensorIO("prob", "output", (1, 1, -1, -1), "FLOAT"),
}
EXPECTED_IO: dict[str, backend.IOSpec] = {
    "image": ("input", (1, 1, -1, -1)),
    "prob": ("output", (1, 1, -1, -1)),
}


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace TensorRT: counts builds, serves engines whose I/O the test chooses."""
    state: dict[str, Any] = {"builds": 0, "loads": 0, "io": dict(IO_OK), "logs": []}
    module = types.ModuleType("tensorrt")
    module.__version__ = "10.3.0.30"  # type: ignore[attr-defined]

    def fake_build(onnx_path: Any, **kwargs: Any) -> Any:
        state["builds"] += 1
        return backend._BuildOutput(b"plan-%d" % state["builds"] * 100, dict(state["io"]), 0.01)

    def fake_load(data: bytes, **kwargs: Any) -> FakeEngine:
        state["loads"] += 1
        return FakeEngine(dict(state["io"]))

    monkeypatch.setattr(backend, "import_tensorrt", lambda flavour="tensorrt": module)
    monkeypatch.setattr(backend, "_build", fake_build)
    monkeypatch.setattr(backend, "load_engine", fake_load)
    monkeypatch.setattr(backend, "engine_io", lambda engine: engine.io)
    monkeypatch.setattr(backend, "_cuda_visible", lambda: True)
    return state


def run(onnx: Path, engine_dir: Path, state: dict[str, Any], **kw: Any) -> backend.CachedEngine:
    args: dict[str, Any] = {
        "precision": "fp16",
        "profile": image_profile((64, 64), (480, 640), (720, 1280)),
        "gpu": ("Orin", "8.7"),
        "expected_io": EXPECTED_IO,
        "log": lambda level, msg: state["logs"].append((level, msg)),
    }
    args.update(kw)
    return backend.get_or_build_engine(onnx, engine_dir, **args)


def test_front_end_builds_then_reuses(
    fake_trt: dict[str, Any], onnx_file: Path, tmp_path: Path
) -> None:
    first = run(onnx_file, tmp_path / "engines", fake_trt)
    assert first.built and first.engine_path.is_file() and first.sidecar_path.is_file()
    assert "no cached engine yet" in first.reason
    second = run(onnx_file, tmp_path / "engines", fake_trt)
    assert not second.built and "cached engine is valid" in second.reason
    assert fake_trt["builds"] == 1 and fake_trt["loads"] == 2
    assert read_sidecar(second.sidecar_path)["io"]["image"]["shape"] == [1, 1, -1, -1]


def test_front_end_warns_with_reason_and_rebuilds(
    fake_trt: dict[str, Any], onnx_file: Path, tmp_path: Path
) -> None:
    run(onnx_file, tmp_path / "engines", fake_trt)
    onnx_file.write_bytes(b"retrained weights" * 50)
    again = run(onnx_file, tmp_path / "engines", fake_trt)
    assert again.built and fake_trt["builds"] == 2
    warnings = [msg for level, msg in fake_trt["logs"] if level == "warning"]
    assert any("ONNX changed" in msg for msg in warnings)
    forced = run(onnx_file, tmp_path / "engines", fake_trt, force_rebuild=True)
    assert forced.built and "force_rebuild" in forced.reason


def test_front_end_rebuilds_corrupt_engine(
    fake_trt: dict[str, Any], onnx_file: Path, tmp_path: Path
) -> None:
    first = run(onnx_file, tmp_path / "engines", fake_trt)
    first.engine_path.write_bytes(first.engine_path.read_bytes()[:10])
    again = run(onnx_file, tmp_path / "engines", fake_trt)
    assert again.built and "engine size mismatch" in again.reason


def test_front_end_rebuilds_once_on_io_mismatch(
    fake_trt: dict[str, Any], onnx_file: Path, tmp_path: Path
) -> None:
    run(onnx_file, tmp_path / "engines", fake_trt)  # cached engine with good I/O
    fake_trt["io"] = {"image": IO_OK["image"], "logits": IO_OK["prob"]}
    with pytest.raises(backend.EngineIOMismatch, match="logits"):
        run(onnx_file, tmp_path / "engines", fake_trt)
    assert fake_trt["builds"] == 2  # one rebuild, then a clear error instead of a loop
    assert any("engine I/O mismatch" in msg for _, msg in fake_trt["logs"])


def test_front_end_build_only_skips_loading(
    fake_trt: dict[str, Any], onnx_file: Path, tmp_path: Path
) -> None:
    result = run(onnx_file, tmp_path / "engines", fake_trt, build_only=True)
    assert result.engine is None and result.built and fake_trt["loads"] == 0
    assert run(onnx_file, tmp_path / "engines", fake_trt, build_only=True).built is False


def test_io_mismatches_names_each_problem() -> None:
    assert backend.io_mismatches(IO_OK, EXPECTED_IO) == []
    assert (
        backend.io_mismatches(
            IO_OK,
            {"image": ("input", (1, 1, None, None)), "prob": ("output", (None, None, -1, -1))},
        )
        == []
    )
    problems = backend.io_mismatches(
        IO_OK, {"image": ("output", (1, 3, -1, -1)), "depth": ("output", (1, 1, -1, -1))}
    )
    text = " | ".join(problems)
    assert "is an input, expected an output" in text
    assert "(1, 1, -1, -1), expected (1, 3, -1, -1)" in text
    assert "missing output tensor 'depth'" in text
    assert "unexpected output tensor 'prob'" in text
