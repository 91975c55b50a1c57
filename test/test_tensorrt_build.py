"""TensorRT builds from exported ONNX.

* TensorRT for RTX (``tensorrt_rtx``) builds engines ahead of time without a GPU, so these tests
  run on CPU-only machines where it is installed (``pip install tensorrt-rtx-cu13``).
* Running engines needs CUDA: those tests run only where real TensorRT (or TensorRT-RTX with a
  supported GPU) and PyTorch with CUDA are present, and say why they skip otherwise.
* A few pure tests (import shim, calibration data plumbing) need neither.
"""

from __future__ import annotations

import json
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from siftrain_ros.engines import tensorrt_backend as backend
from siftrain_ros.engines.cache import image_profile, read_sidecar, sha256_file
from siftrain_ros.engines.tensorrt_backend import (
    CalibrationBatches,
    EngineBuildError,
    OnnxParseError,
    TensorRTUnavailable,
    build_engine,
    get_or_build_engine,
    import_tensorrt,
)

# torch.onnx.export (module-scoped fixture) warns about its own pytree use.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

RTX_REASON = (
    "TensorRT for RTX is not installed (pip install tensorrt-rtx-cu13); "
    "its builder makes engines without a GPU"
)
PROFILE = image_profile((32, 32), (240, 320), (480, 640))
TINY_IO: dict[str, backend.IOSpec] = {
    "image": ("input", (1, 1, -1, -1)),
    "prob": ("output", (1, 1, -1, -1)),
}
# TensorRT-RTX compute-capability targets (no SM90 data-centre Hopper, no SM87 Jetson Orin).
RTX_CCS = {(7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1)}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rtx() -> types.ModuleType:
    pytest.importorskip("tensorrt_rtx", reason=RTX_REASON)
    try:
        return import_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as exc:  # installed, but its native libraries do not load
        pytest.skip(f"tensorrt_rtx is installed but unusable: {exc}")


@pytest.fixture(scope="module")
def real_trt_cuda() -> types.ModuleType:
    torch = pytest.importorskip("torch", reason="PyTorch is needed to run engines")
    try:
        trt = import_tensorrt("tensorrt")
    except TensorRTUnavailable as exc:
        pytest.skip(f"real TensorRT is not installed or not usable here: {exc}")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but PyTorch sees no CUDA device")
    return trt


def _tiny_net(dtype: Any) -> Any:
    torch: Any = pytest.importorskip("torch")
    torch.manual_seed(0)

    class TinyNet(torch.nn.Module):
        """conv-relu-conv-sigmoid, (1, 1, H, W) -> (1, 1, H, W): enough for a real build."""

        def __init__(self) -> None:
            super().__init__()
            self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.c2 = torch.nn.Conv2d(8, 1, 3, padding=1)

        def forward(self, x: Any) -> Any:
            return torch.sigmoid(self.c2(torch.relu(self.c1(x))))

    return TinyNet().eval().to(dtype)


def _export(net: Any, path: Path, dtype: Any) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    example = torch.rand(1, 1, 64, 96).to(dtype)
    # Named dims are dynamic without range constraints; H and W vary, batch stays 1.
    torch.onnx.export(
        net,
        (example,),
        str(path),
        input_names=["image"],
        output_names=["prob"],
        dynamic_shapes={"x": {2: "height", 3: "width"}},
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    return path


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32 and fp16 exports of the same tiny conv net, ``image`` (1, 1, H, W) -> ``prob``."""
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("onnx")
    return {
        "fp32": _export(_tiny_net(torch.float32), root / "tiny.onnx", torch.float32),
        "fp16": _export(_tiny_net(torch.float16), root / "tiny16.onnx", torch.float16),
    }


# --------------------------------------------------------------------------- no TensorRT needed


def test_import_shim_reports_missing_and_stub_only_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="tensorrt, tensorrt_rtx"):
        import_tensorrt("onnxruntime")

    def missing(name: str) -> Any:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(backend.importlib, "import_module", missing)
    with pytest.raises(TensorRTUnavailable, match="pip install tensorrt-rtx-cu13"):
        import_tensorrt("tensorrt_rtx")
    # tensorrt-stubs alone makes `import tensorrt` succeed as an empty namespace package.
    monkeypatch.setattr(backend.importlib, "import_module", lambda name: types.ModuleType(name))
    with pytest.raises(TensorRTUnavailable, match="only type stubs"):
        import_tensorrt("tensorrt")


def test_compute_capability_names_are_normalised() -> None:
    norm = backend.normalise_compute_capabilities
    assert norm(["8.6", "sm_89", "SM120", "75"]) == ("SM86", "SM89", "SM120", "SM75")
    assert norm(["current"]) == ("CURRENT",)
    assert norm(None) == ()
    with pytest.raises(ValueError, match="only compute capability"):
        norm(["current", "8.6"])
    with pytest.raises(ValueError, match="bad compute capability"):
        norm(["ampere"])


def test_calibration_batches_feed_buffer_and_cache(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    batches = [np.full((1, 1, 8, 12), i, dtype=np.float32) for i in range(3)]
    # device="cpu" exercises the plumbing; real calibration uses a CUDA buffer.
    data = CalibrationBatches(batches, cache_path=tmp_path / "dprnet.calib", device="cpu")
    assert data.batch_size == 1 and data.shape == (1, 1, 8, 12) and len(data) == 3
    pointers = [data.next_batch(["image"]) for _ in range(3)]
    assert all(p is not None and len(p) == 1 for p in pointers)
    assert data.next_batch(["image"]) is None  # exhausted: tells TensorRT to stop
    with pytest.raises(ValueError, match="feeds only 'image'"):
        data.reset()
        data.next_batch(["image", "mask"])
    assert data.read_cache() is None
    data.write_cache(b"calibration table")
    assert data.read_cache() == b"calibration table"
    other = CalibrationBatches(batches[:2], device="cpu")
    assert other.fingerprint() != data.fingerprint()
    with pytest.raises(ValueError, match="one shape"):
        CalibrationBatches([batches[0], np.zeros((1, 1, 4, 4), np.float32)])


def test_entropy_calibrator_wraps_batches(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    data = CalibrationBatches(
        [np.ones((1, 1, 4, 4), np.float32)], cache_path=tmp_path / "c", device="cpu"
    )
    # TensorRT 11 and TensorRT-RTX have no IInt8EntropyCalibrator2.
    with pytest.raises(EngineBuildError, match="Q/DQ"):
        backend.make_entropy_calibrator(types.ModuleType("tensorrt_rtx"), data)
    fake = types.SimpleNamespace(IInt8EntropyCalibrator2=object)  # stands in for the pybind base
    logs: list[tuple[str, str]] = []
    calibrator: Any = backend.make_entropy_calibrator(
        fake,  # type: ignore[arg-type]
        data,
        lambda level, msg: logs.append((level, msg)),
    )
    assert calibrator.get_batch_size() == 1
    assert calibrator.get_batch(["wrong"]) is None and logs[0][0] == "error"
    assert len(calibrator.get_batch(["image"])) == 1
    assert calibrator.get_batch(["image"]) is None
    calibrator.write_calibration_cache(memoryview(b"table"))
    assert calibrator.read_calibration_cache() == b"table"


# --------------------------------------------------------------------------- TensorRT-RTX builds


def test_rtx_builds_tiny_engine_with_profile(
    rtx: types.ModuleType, tiny_onnx: dict[str, Path]
) -> None:
    start = time.perf_counter()
    engine = build_engine(tiny_onnx["fp32"], profile=PROFILE, flavour="tensorrt_rtx")
    print(
        f"tensorrt_rtx {rtx.__version__}: tiny engine built in {time.perf_counter() - start:.3f} s"
    )
    assert isinstance(engine, bytes) and len(engine) > 10_000


def test_rtx_get_or_build_writes_engine_and_sidecar(
    rtx: types.ModuleType, tiny_onnx: dict[str, Path], tmp_path: Path
) -> None:
    logs: list[tuple[str, str]] = []

    def build(**kw: Any) -> backend.CachedEngine:
        args: dict[str, Any] = {
            "precision": "fp32",
            "profile": PROFILE,
            "flavour": "tensorrt_rtx",
            "expected_io": TINY_IO,
            "build_only": True,  # no GPU needed: the engine is built, written, not loaded
            "log": lambda level, msg: logs.append((level, msg)),
        }
        args.update(kw)
        return get_or_build_engine(tiny_onnx["fp32"], tmp_path / "engines", **args)

    first = build()
    assert first.built and first.engine is None
    assert first.engine_path.stat().st_size > 10_000
    sidecar = read_sidecar(first.sidecar_path)
    assert sidecar["key"]["trt_flavour"] == "tensorrt_rtx"
    assert sidecar["key"]["trt_version"] == rtx.__version__
    assert sidecar["key"]["gpu_name"] == "portable"
    assert sidecar["key"]["onnx_sha256"] == sha256_file(tiny_onnx["fp32"])
    assert sidecar["engine_size"] == first.engine_path.stat().st_size
    assert sidecar["engine_sha256"] == sha256_file(first.engine_path)
    assert sidecar["io"]["image"] == {"mode": "input", "shape": [1, 1, -1, -1], "dtype": "FLOAT"}
    assert json.loads(first.sidecar_path.read_text())["key"]["profile"][0][0] == "image"

    second = build()
    assert not second.built and "cached engine is valid" in second.reason

    wider = build(profile=image_profile((32, 32), (240, 320), (720, 1280)))
    assert wider.built and "profile changed" in wider.reason
    assert any(level == "warning" and "profile changed" in msg for level, msg in logs)


def test_rtx_fp16_comes_from_an_fp16_onnx(
    rtx: types.ModuleType, tiny_onnx: dict[str, Path], tmp_path: Path
) -> None:
    # Strongly typed: no BuilderFlag.FP16, so an fp32 ONNX cannot become an fp16 engine.
    assert not hasattr(rtx.BuilderFlag, "FP16")
    with pytest.raises(EngineBuildError, match="strongly typed"):
        build_engine(tiny_onnx["fp32"], profile=PROFILE, precision="fp16", flavour="tensorrt_rtx")
    with pytest.raises(EngineBuildError, match="pick the fp32 model"):
        build_engine(tiny_onnx["fp16"], profile=PROFILE, precision="fp32", flavour="tensorrt_rtx")
    result = get_or_build_engine(
        tiny_onnx["fp16"],
        tmp_path,
        precision="fp16",
        profile=PROFILE,
        flavour="tensorrt_rtx",
        build_only=True,
    )
    assert result.built and result.io["image"].dtype == "HALF"


def test_rtx_int8_needs_qdq_onnx(rtx: types.ModuleType, tiny_onnx: dict[str, Path]) -> None:
    with pytest.raises(EngineBuildError, match="Q/DQ"):
        build_engine(tiny_onnx["fp32"], profile=PROFILE, precision="int8", flavour="tensorrt_rtx")


def test_rtx_compute_capability_targets(rtx: types.ModuleType, tiny_onnx: dict[str, Path]) -> None:
    engine = build_engine(
        tiny_onnx["fp32"],
        profile=PROFILE,
        flavour="tensorrt_rtx",
        compute_capabilities=["8.6", "SM89"],
    )
    assert len(engine) > 10_000
    with pytest.raises(EngineBuildError, match="cannot target SM90"):
        build_engine(
            tiny_onnx["fp32"], profile=PROFILE, flavour="tensorrt_rtx", compute_capabilities=["9.0"]
        )


def test_rtx_parse_errors_are_collected(rtx: types.ModuleType, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07\x12\x04this is not a model")
    with pytest.raises(OnnxParseError, match="could not parse .*broken.onnx"):
        build_engine(broken, profile=PROFILE, flavour="tensorrt_rtx")
    with pytest.raises(FileNotFoundError):
        build_engine(tmp_path / "absent.onnx", profile=PROFILE, flavour="tensorrt_rtx")


def test_rtx_profile_must_name_the_dynamic_input(
    rtx: types.ModuleType, tiny_onnx: dict[str, Path]
) -> None:
    wrong = image_profile((32, 32), (64, 64), (128, 128), name="img")
    with pytest.raises(EngineBuildError, match="'image' .* has no profile entry"):
        build_engine(tiny_onnx["fp32"], profile=wrong, flavour="tensorrt_rtx")
    three_channels = image_profile((32, 32), (64, 64), (128, 128), channels=3)
    with pytest.raises(EngineBuildError, match="fixed at 1"):
        build_engine(tiny_onnx["fp32"], profile=three_channels, flavour="tensorrt_rtx")


def test_rtx_builds_the_exported_project_graphs_fp32_and_fp16(
    rtx: types.ModuleType, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`siftrain build-engines` on the graphs `siftrain export-onnx` writes: fp32 from the fp32
    ONNX, fp16 from the fp16 ONNX (TensorRT-RTX is strongly typed), each with a profile."""
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    from test_export import make_weights, shared_dirs

    from siftrain_ros.cli import main

    weights, engines = shared_dirs(tmp_path_factory)  # fp32 graphs shared with test_export
    make_weights(weights, ("l1",))  # one net for both roles: a single fp16 export
    common = ["--size", "320x240", "--flavour", "tensorrt_rtx", "--engine-dir", str(engines),
              "--weights-dir", str(weights)]
    assert main(["build-engines", "--precision", "fp32", *common]) == 0
    out = capsys.readouterr().out
    assert out.count("] built: ") == 2 and "from fp32 ONNX" in out
    assert main(["build-engines", "--precision", "fp16", "--model", "l1", *common]) == 0
    out = capsys.readouterr().out
    assert "from fp16 ONNX" in out and out.count("] built: ") == 1
    sidecars = {p.name: read_sidecar(p) for p in engines.glob("*.engine.json")}
    keys = [doc["key"] for doc in sidecars.values()]
    assert {k["precision"] for k in keys} == {"fp32", "fp16"}
    assert all(k["profile"] == [["image", [1, 1, 16, 16], [1, 1, 240, 320], [1, 1, 240, 320]]]
               for k in keys)
    half = next(doc for doc in sidecars.values() if doc["key"]["precision"] == "fp16")
    assert half["io"]["image"]["dtype"] == "HALF"

    # A damaged engine is noticed and rebuilt, with the reason on the progress output.
    engine = next(engines.glob("dprnet_lite.fp32.*.engine"))
    engine.write_bytes(engine.read_bytes()[:1000])
    assert main(["build-engines", "--precision", "fp32", *common]) == 0
    out = capsys.readouterr().out
    assert "engine size mismatch" in out and out.count("up to date") == 1


# --------------------------------------------------------------------------- running engines


def _check_runner(trt_flavour: str, onnx: Path, engine_dir: Path, precision: str) -> None:
    torch = pytest.importorskip("torch")
    result = get_or_build_engine(
        onnx,
        engine_dir,
        precision=precision,
        profile=PROFILE,
        flavour=trt_flavour,
        expected_io=TINY_IO,
    )
    assert result.engine is not None
    runner = backend.TensorRTRunner(result.engine)
    dtype = runner.dtype("image")  # float16 for an fp16 ONNX, else float32
    reference = _tiny_net(torch.float32).cuda()  # same seed, same weights as the export
    for h, w in [(240, 320), (37, 53), (480, 640)]:
        x = torch.rand(1, 1, h, w, device="cuda").to(dtype)
        out = runner.infer({"image": x})["prob"]
        with torch.no_grad():
            expected = reference(x.float())
        assert out.shape == (1, 1, h, w) and out.is_cuda
        tol = 2e-3 if precision == "fp32" else 2e-2  # TF32 / fp16 kernels
        assert (out.float() - expected.float()).abs().max().item() < tol
    with pytest.raises(ValueError, match="outside the profile"):
        runner.infer({"image": torch.rand(1, 1, 720, 960, device="cuda").to(dtype)})
    cached = get_or_build_engine(
        onnx, engine_dir, precision=precision, profile=PROFILE, flavour=trt_flavour
    )
    assert not cached.built


def test_tensorrt_builds_loads_and_runs_on_cuda(
    real_trt_cuda: types.ModuleType, tiny_onnx: dict[str, Path], tmp_path: Path
) -> None:
    _check_runner("tensorrt", tiny_onnx["fp32"], tmp_path, "fp32")
    # TensorRT 10: fp16 from the builder flag on the fp32 model; 11: from the fp16 model.
    fp16_onnx = tiny_onnx["fp16"] if backend.is_strongly_typed(real_trt_cuda) else tiny_onnx["fp32"]
    _check_runner("tensorrt", fp16_onnx, tmp_path, "fp16")


def test_rtx_engine_runs_on_a_supported_gpu(
    rtx: types.ModuleType, tiny_onnx: dict[str, Path], tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("running a TensorRT-RTX engine needs a CUDA GPU; none visible")
    cc = torch.cuda.get_device_capability()
    if cc not in RTX_CCS:
        pytest.skip(f"TensorRT-RTX does not support compute capability {cc} (e.g. SM90, SM87)")
    _check_runner("tensorrt_rtx", tiny_onnx["fp32"], tmp_path, "fp32")
