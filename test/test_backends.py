"""Network backends: auto selection, onnxruntime vs torch parity through `extract`, and one
clear error for each kind of bad input."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
from test_export import shared_dirs

from siftrain_ros import samples
from siftrain_ros.cli import main
from siftrain_ros.engines import tensorrt_backend
from siftrain_ros.evaluation.matching import nearest_neighbours
from siftrain_ros.export import ensure_onnx
from siftrain_ros.frontend import factory
from siftrain_ros.frontend.backend import BackendError, TorchBackend
from siftrain_ros.frontend.factory import make_backend
from siftrain_ros.frontend.onnx_backend import OnnxRuntimeBackend
from siftrain_ros.frontend.tensorrt_frontend import (
    TensorRTBackend,
    calibration_frames,
    onnx_precision_for,
)
from siftrain_ros.frontend.weights import MissingWeightsError

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    weights, engines = shared_dirs(tmp_path_factory)
    for name in ("dprnet", "ggirnet"):  # reuses test_export's graphs when it ran first
        ensure_onnx(name, weights_dir=weights, out_dir=engines, log=lambda m: None)
    return {"weights": weights, "engines": engines}


def test_auto_picks_onnxruntime_on_cpu_and_says_why(dirs: dict[str, Path]) -> None:
    logs: list[str] = []
    backend = make_backend("auto", device="cpu", weights_dir=dirs["weights"],
                           engine_dir=dirs["engines"], log=logs.append)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.name == "onnxruntime"
    choice = logs[-1]
    assert choice.startswith("backend auto: using onnxruntime; passed over tensorrt: ")
    assert "tensorrt_rtx: " in choice  # each skipped candidate has its reason
    out = backend(torch.rand(1, 1, 37, 53))
    assert out.detect.shape == out.describe.shape == (1, 1, 37, 53)
    assert out.detect.dtype == torch.float32 and 0 <= out.detect.min() <= out.detect.max() <= 1


def test_auto_falls_back_to_torch_without_onnxruntime(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from siftrain_ros.frontend import onnx_backend

    def no_ort() -> None:
        raise BackendError("onnxruntime is not installed (test)")

    monkeypatch.setattr(onnx_backend, "import_onnxruntime", no_ort)
    logs: list[str] = []
    backend = make_backend("auto", weights_dir=dirs["weights"], engine_dir=dirs["engines"],
                           log=logs.append)
    assert isinstance(backend, TorchBackend)
    assert "using torch" in logs[-1] and "onnxruntime: onnxruntime is not installed" in logs[-1]


def test_extract_same_keypoints_through_onnxruntime_and_torch(
    dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = samples.tum_frames()[0]
    results = {}
    for backend in ("onnxruntime", "torch"):
        out = tmp_path / backend
        code = main(["extract", str(frame), "--out", str(out), "--backend", backend,
                     "--scale", "0.5", "--weights-dir", str(dirs["weights"]),
                     "--engine-dir", str(dirs["engines"])])
        assert code == 0, capsys.readouterr().err
        with np.load(out / f"{frame.stem}.npz") as data:
            results[backend] = {k: data[k] for k in data.files}
    ort_xy, torch_xy = results["onnxruntime"]["xy"], results["torch"]["xy"]
    assert len(torch_xy) > 100
    # Keypoints are in input pixels even at --scale 0.5.
    assert torch_xy[:, 0].max() > 400
    distance, _ = nearest_neighbours(torch_xy, ort_xy)
    assert (distance < 0.5).mean() >= 0.99
    assert abs(len(ort_xy) - len(torch_xy)) <= 0.01 * len(torch_xy) + 1


# --------------------------------------------------------------------------- bad input


def test_unknown_backend_precision_model_are_one_error_each() -> None:
    with pytest.raises(BackendError, match="backend must be one of"):
        make_backend("openvino")
    with pytest.raises(BackendError, match="precision must be one of"):
        make_backend("torch", precision="fp8")
    with pytest.raises(BackendError, match="model must be one of"):
        make_backend("torch", model="paper")


def test_precisions_a_backend_cannot_run(dirs: dict[str, Path], tmp_path: Path) -> None:
    kw = {"weights_dir": dirs["weights"], "engine_dir": dirs["engines"], "log": lambda m: None}
    with pytest.raises(BackendError, match="int8 needs the tensorrt backend"):
        make_backend("onnxruntime", precision="int8", **kw)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="int8 needs the tensorrt backend"):
        make_backend("torch", precision="int8", **kw)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        make_backend("torch", precision="fp16", **kw)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="no backend can run this"):
        make_backend("auto", precision="int8", **kw)  # type: ignore[arg-type]
    # Refused before any (slow) fp16 export happens.
    kw["engine_dir"] = tmp_path
    with pytest.raises(BackendError, match="fp16 with onnxruntime needs a CUDA device"):
        make_backend("onnxruntime", precision="fp16", **kw)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_int8_recipe_needs_calibration_or_qdq() -> None:
    assert onnx_precision_for("fp16", strongly_typed=False, has_calibration=False) == "fp32"
    assert onnx_precision_for("fp16", strongly_typed=True, has_calibration=False) == "fp16"
    assert onnx_precision_for("int8", strongly_typed=False, has_calibration=True) == "fp32"
    with pytest.raises(BackendError, match="int8 needs calibration data"):
        onnx_precision_for("int8", strongly_typed=False, has_calibration=False)
    with pytest.raises(BackendError, match="Q/DQ"):
        onnx_precision_for("int8", strongly_typed=True, has_calibration=True)
    with pytest.raises(BackendError, match="unknown precision"):
        onnx_precision_for("int4", strongly_typed=False, has_calibration=True)


def test_calibration_frames_are_rainy_samples_at_the_profile_size() -> None:
    frames = calibration_frames(60, 80, count=4)
    assert len(frames) == 4 and all(f.shape == (1, 1, 60, 80) for f in frames)
    assert all(f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1 for f in frames)
    assert not np.array_equal(frames[0], frames[3])  # same frame, different rain


def test_missing_and_unreadable_onnx_files(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not found"):
        OnnxRuntimeBackend(tmp_path / "absent.onnx", log=lambda m: None)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(BackendError, match="unreadable|cannot load"):
        OnnxRuntimeBackend(bad, log=lambda m: None)


def test_missing_weights_name_the_file(tmp_path: Path) -> None:
    for name in ("torch", "onnxruntime"):
        with pytest.raises(MissingWeightsError, match="dprnet_lite.safetensors not found"):
            make_backend(name, weights_dir=tmp_path, engine_dir=tmp_path, log=lambda m: None)


@pytest.mark.skipif(not NO_CUDA, reason="checks the no-GPU message; this machine has CUDA")
def test_gpu_asked_for_where_there_is_none(dirs: dict[str, Path]) -> None:
    for name in ("auto", "torch", "onnxruntime", "tensorrt"):
        with pytest.raises(ValueError, match="no CUDA GPU"):
            make_backend(name, device="cuda", weights_dir=dirs["weights"])
    with pytest.raises(BackendError, match="CUDA GPU"):
        TensorRTBackend(dirs["engines"] / "dprnet_lite.onnx", None, engine_dir=dirs["engines"],
                        flavour="tensorrt_rtx" if _has("tensorrt_rtx") else "tensorrt")


def _has(module: str) -> bool:
    try:
        tensorrt_backend.import_tensorrt(module)
    except (ImportError, ValueError):
        return False
    return True


def test_tensorrt_not_installed_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    real_import = tensorrt_backend.importlib.import_module

    def missing(name: str) -> types.ModuleType:
        if name.startswith("tensorrt"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name)

    monkeypatch.setattr(tensorrt_backend.importlib, "import_module", missing)
    with pytest.raises(BackendError, match="cannot import tensorrt.*install TensorRT"):
        make_backend("tensorrt", device="cpu")
    monkeypatch.setattr(factory, "default_engine_dir", lambda: Path("/nonexistent"))
    code = main(["build-engines", "--flavour", "tensorrt_rtx", "--precision", "fp16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("siftrain build-engines: error: cannot import tensorrt_rtx")
