"""ONNX export of DPRNet/GGIRNet: checker, operator allow-list, dynamic size, parity with
PyTorch under onnxruntime, and re-export when the weights change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from siftrain_ros.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    OnnxFileError,
    check_onnx,
    ensure_onnx,
    onnx_path,
    read_onnx_metadata,
)
from siftrain_ros.export import onnx_export as export_module
from siftrain_ros.frontend.weights import load_net, save_net
from siftrain_ros.nets import build_net

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")


def make_weights(directory: Path, names: tuple[str, ...] = ("dprnet", "ggirnet")) -> Path:
    """Deterministic fresh-net weights (same bytes every call: exports are reused by sha256).

    The tail is scaled up from its near-zero initialisation so the nets change the image
    visibly and the parity checks compare real residuals.
    """
    for seed, name in enumerate(names):
        target = directory / f"{name}_lite.safetensors"
        if target.is_file():
            continue
        torch.manual_seed(seed)
        net = build_net("dprnet" if name == "l1" else name, "lite")  # type: ignore[arg-type]
        with torch.no_grad():
            for p in net.tail.parameters():
                p.mul_(30.0)
        save_net(net, target)
    return directory


def shared_dirs(factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(weights dir, engine dir) shared by every test module of this session, so each graph
    is exported once per session (an export takes ~5 s)."""
    base = factory.getbasetemp() / "siftrain-shared"
    weights = make_weights(base / "weights")
    return weights, base / "engines"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    weights, engines = shared_dirs(tmp_path_factory)
    return {name: ensure_onnx(name, weights_dir=weights, out_dir=engines, log=lambda m: None)
            for name in ("dprnet", "ggirnet")} | {"weights": weights, "engines": engines}


@pytest.mark.parametrize("name", ["dprnet", "ggirnet"])
def test_export_passes_checker_with_dynamic_size(exported: dict[str, Path], name: str) -> None:
    path = exported[name]
    assert path == onnx_path(exported["engines"], name)
    ops = check_onnx(path)  # onnx.checker full check + TensorRT operator allow-list
    assert "Conv" in ops
    model = onnx.load(str(path))
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [1, "height", "width"] and isinstance(dims[0], str)
    meta = read_onnx_metadata(path)
    assert meta["net"] == name and meta["precision"] == "fp32" and len(meta["weights_sha256"]) == 64


@pytest.mark.parametrize("name", ["dprnet", "ggirnet"])
def test_onnxruntime_equals_pytorch(exported: dict[str, Path], name: str) -> None:
    net = load_net(name, "lite", exported["weights"])
    session = ort.InferenceSession(str(exported[name]), providers=["CPUExecutionProvider"])
    for h, w in [(37, 53), (120, 160)]:  # odd sizes exercise the pad-to-multiple-of-4 path
        x = torch.rand(1, 1, h, w)
        with torch.no_grad():
            expected = (net(x) - x).numpy()
        got = session.run(None, {INPUT_NAME: x.numpy()})[0] - x.numpy()
        # On the predicted residual, far smaller than the image itself.
        assert got.shape == expected.shape and np.abs(expected).max() > 1e-3
        assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()


def test_ensure_onnx_reuses_then_reexports_stale_or_unreadable(
    exported: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs: list[str] = []
    calls: list[Path] = []
    same = ensure_onnx("dprnet", weights_dir=exported["weights"], out_dir=exported["engines"],
                       log=logs.append)
    assert same == exported["dprnet"] and logs == []  # up to date: no export, no log

    def fake_export(net: object, path: Path, **kw: object) -> Path:
        calls.append(path)
        return path

    monkeypatch.setattr(export_module, "export_net", fake_export)
    engines = tmp_path / "engines"
    engines.mkdir()
    stale = engines / "dprnet_lite.onnx"
    stale.write_bytes(exported["dprnet"].read_bytes())
    retrained = make_weights(tmp_path / "w2", ("dprnet",))
    with torch.no_grad():
        net = load_net("dprnet", "lite", retrained)
        next(net.parameters()).add_(1.0)
    save_net(net, retrained / "dprnet_lite.safetensors")
    ensure_onnx("dprnet", weights_dir=retrained, out_dir=engines, log=logs.append)
    assert "stale (weights_sha256 changed)" in logs[-1] and calls == [stale]
    stale.write_bytes(b"garbage")
    ensure_onnx("dprnet", weights_dir=retrained, out_dir=engines, log=logs.append)
    assert "unreadable" in logs[-1] and "re-exporting" in logs[-1]


def test_unreadable_and_missing_onnx_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(OnnxFileError, match="not found"):
        read_onnx_metadata(tmp_path / "absent.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12\x04this is not a model")
    with pytest.raises(OnnxFileError):
        check_onnx(bad)


def test_export_onnx_command_reports_checked_graphs(
    exported: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from siftrain_ros.cli import main

    code = main(["export-onnx", "--out", str(exported["engines"]), "--weights-dir",
                 str(exported["weights"]), "--precision", "fp32"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("onnx.checker ok") == 2 and "TensorRT-supported" in out


def test_one_graph_front_half_matches_the_scale_space_code() -> None:
    """The experimental one-graph module (eager; its ONNX export takes ~30 s, measured in
    docs/backends.md) computes what build_scale_space + gradient_pyramid compute."""
    from siftrain_ros.export.front_half import FrontHalf
    from siftrain_ros.sift import SiftConfig, build_scale_space, gradient_pyramid

    class Halve(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0.5

    config = SiftConfig()
    x = torch.rand(1, 1, 48, 64)
    module = FrontHalf(torch.nn.Identity(), Halve(), config, 48, 64)
    with torch.no_grad():
        outputs = module(x)
    n = module.n_octaves
    dogs = build_scale_space(x * 255.0, config).dogs
    gradients = gradient_pyramid(build_scale_space(x * 127.5, config), config)
    assert len(outputs) == 3 * n == 3 * len(dogs)
    for o in range(n):
        assert torch.allclose(outputs[o], dogs[o], atol=1e-3)
        assert torch.allclose(outputs[n + o], gradients.magnitude[o], atol=1e-3)
        ori = (outputs[2 * n + o] - gradients.orientation[o]).abs()
        assert torch.minimum(ori, 360 - ori).max() < 0.1  # angles wrap at 360
