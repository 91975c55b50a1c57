"""DPRNet / GGIRNet: shapes, budgets, attention internals, ONNX export, authors' checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from siftrain_ros.nets import (
    KINDS,
    ChannelAttention,
    NetConfig,
    SobelFilter,
    build_net,
    count_macs,
    count_parameters,
    describe_presets,
    load_authors_checkpoint,
    net_config,
)

PAPER_PARAMS = 26.8e6
# Compute and shape ops TensorRT's ONNX parser takes natively (no plugins).
TENSORRT_OPS = {"Conv", "Relu", "Sigmoid", "Mul", "Add", "Sub", "Div", "Pad", "DepthToSpace",
                "SpaceToDepth", "GlobalAveragePool", "ReduceMean", "Concat", "Slice", "Shape",
                "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Constant", "Cast"}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(1, 1, 37, 53), (2, 1, 1, 1), (1, 1, 5, 8), (1, 1, 64, 48)])
def test_lite_keeps_any_size(kind: str, shape: tuple[int, ...]) -> None:
    net = build_net(kind, "lite").eval()
    x = torch.rand(shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("kind", KINDS)
def test_lite_fits_real_time_budget(kind: str) -> None:
    net = build_net(kind, "lite")
    assert net.config.in_channels == net.config.out_channels == 1
    assert count_parameters(net) <= 1_000_000
    assert count_macs(net, 480, 640) <= 25e9


@pytest.mark.parametrize("kind", KINDS)
def test_paper_preset_is_the_published_architecture(kind: str) -> None:
    with torch.device("meta"):
        net = build_net(kind, "paper")
    config = net.config
    assert (config.in_channels, config.out_channels, config.kernel_size) == (3, 3, 5)
    assert config.depth == 28 and config.downsample == 1 and not config.residual_output
    assert config.channels[:3] == (32, 32, 64) and max(config.channels) == 256
    assert abs(count_parameters(net) - PAPER_PARAMS) <= 0.1 * PAPER_PARAMS
    # About 22 M MAC per pixel (the authors' 11.7 TMAC for the pair at 512x512).
    assert count_macs(net, 64, 64) / 64**2 == pytest.approx(22.3e6, rel=0.03)


@pytest.mark.parametrize("kind", KINDS)
def test_paper_preset_runs_on_a_small_rgb_image(kind: str) -> None:
    net = build_net(kind, "paper").eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, 16, 16))
    assert y.shape == (1, 3, 16, 16) and torch.isfinite(y).all()


def test_sobel_kernels_are_fixed_buffers() -> None:
    net = build_net("ggirnet", "lite")
    params = {id(p) for p in net.parameters()}
    sobels = [m for m in net.modules() if isinstance(m, SobelFilter)]
    assert len(sobels) == net.config.depth
    for sobel in sobels:
        assert id(sobel.kx) not in params and id(sobel.ky) not in params
        assert not sobel.kx.requires_grad and not sobel.ky.requires_grad
    assert not any("sobel" in key for key in net.state_dict())
    # A ramp along x (columns) / y (rows): Sobel sums to 8 x slope; y points up (authors').
    ramp = torch.arange(6.0).expand(1, 2, 6, 6)
    gx, _ = SobelFilter(2)(ramp)
    _, gy = SobelFilter(2)(ramp.transpose(-1, -2))
    assert torch.all(gx[..., 1:-1, 1:-1] == 8) and torch.all(gy[..., 1:-1, 1:-1] == -8)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind: str) -> None:
    net = build_net(kind, "lite")
    x = torch.rand(2, 1, 29, 35)
    net(x).square().mean().backward()
    dead = [name for name, p in net.named_parameters()
            if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead


@pytest.mark.parametrize("kind", KINDS)
def test_untrained_lite_is_near_identity(kind: str) -> None:
    net = build_net(kind, "lite").eval()
    x = torch.rand(1, 1, 48, 64)
    with torch.no_grad():
        y = net(x)
    assert (y - x).abs().max() < 0.05


def test_channel_attention_taps_match_a_conv1d_over_one_sample() -> None:
    # The authors' layer: Conv1d(C, C, 5, padding="same") on the (B, C, 1) pooled vector.
    ca = ChannelAttention(6, taps=5)
    x = torch.rand(2, 6, 7, 9)
    pooled = x.mean(dim=(2, 3)).unsqueeze(-1)
    w1, w2 = ca.fc1.weight.squeeze(2), ca.fc2.weight.squeeze(2)
    gate = torch.sigmoid(F.conv1d(F.relu(F.conv1d(pooled, w1, ca.fc1.bias, padding=2)),
                                  w2, ca.fc2.bias, padding=2))
    torch.testing.assert_close(ca(x), x * gate.unsqueeze(-1))


def test_mac_counts_by_hand() -> None:
    assert count_macs(nn.Conv2d(3, 8, 3, padding=1), 10, 12) == 8 * 10 * 12 * 3 * 9
    assert count_macs(SobelFilter(4), 10, 12, in_channels=4) == 2 * 4 * 10 * 12 * 9
    lite = build_net("dprnet", "lite")
    # Counted at the padded size the network really runs at.
    assert count_macs(lite, 61, 63) == count_macs(lite, 64, 64) < count_macs(lite, 64, 68)


def test_describe_presets_table() -> None:
    rows = describe_presets()
    assert {(r["preset"], r["network"]) for r in rows} == {
        (p, k) for p in ("paper", "lite") for k in KINDS}
    for row in rows:
        assert row["params"] > 0 and row["gmac"] > 0 and (row["height"], row["width"]) == (480, 640)
        if row["preset"] == "lite":
            assert 5 <= row["gmac"] <= 20 and 0.3e6 <= row["params"] <= 0.8e6


def test_config_rejects_inconsistent_settings() -> None:
    base = net_config("dprnet", "lite")
    for bad in ({"kernel_size": 4}, {"channels": ()}, {"attention": "temporal"},
                {"downsample": 0}, {"dilations": (1, 2)}, {"in_channels": 3}):
        with pytest.raises(ValueError):
            dataclasses.replace(base, **bad)
    with pytest.raises(ValueError):
        net_config("prenet", "lite")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_net("dprnet", "huge")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # from torch's own pytree use
@pytest.mark.parametrize(("kind", "overrides"), [
    ("ggirnet", {}),
    # Export time grows with the graph (~8 s for a full lite net here); DPRNet's ops are a subset
    # of GGIRNet's, so two of its blocks (one dilated) are enough to keep this file fast.
    ("dprnet", {"channels": (64, 64), "dilations": (1, 8)}),
])
def test_lite_exports_to_onnx_with_dynamic_size(kind: str, overrides: dict, tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net = build_net(kind, "lite", **overrides).eval()
    path = tmp_path / f"{kind}.onnx"
    # A batch of 2: torch.export specialises example sizes of 1 to constants. Named dims
    # (strings) are dynamic without range constraints the exporter cannot prove.
    torch.onnx.export(net, (torch.rand(2, 1, 64, 96),), str(path), input_names=["image"],
                      output_names=["derained"],
                      dynamic_shapes={"x": {0: "batch", 2: "height", 3: "width"}},
                      dynamo=True, external_data=False, verbose=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} <= TENSORRT_OPS
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 1, 37, 53), (2, 1, 50, 70)]:
        x = torch.rand(shape)
        with torch.no_grad():
            expected = (net(x) - x).numpy()
        got = session.run(None, {"image": x.numpy()})[0] - x.numpy()
        # Compared on the predicted residual, which is far smaller than the image.
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()


def _authors_state_dict(config: NetConfig) -> dict[str, torch.Tensor]:
    """Random weights keyed and shaped as the authors' DataParallel checkpoints are."""
    k, sd = config.kernel_size, {}

    def put(name: str, *shape: int) -> None:
        sd[f"module.{name}.weight"] = torch.randn(shape)
        sd[f"module.{name}.bias"] = torch.randn(shape[0])

    c0 = c_in = config.channels[0]
    put("head.0", c0, config.in_channels, k, k)
    for i, c in enumerate(config.channels):
        put(f"body.{i}.block.0", c, c_in, k, k)
        put(f"body.{i}.block.2", c, c, k, k)
        put(f"body.{i}.shortcut", c, c_in, 1, 1)
        put(f"body.{i}.channelattention.ca.0", c, c, 5)
        put(f"body.{i}.channelattention.ca.2", c, c, 5)
        put(f"body.{i}.spatialattention.conv.0", 1, c, 1, 1)
        put(f"body.{i}.spatialattention.conv.2", 1, 1, 5, 5)
        put(f"body.{i}.spatialattention.conv.4", 1, 1, 5, 5)
        put(f"body.{i}.gridientattention.conv1", 1, 2, 5, 5)
        put(f"body.{i}.gridientattention.conv2.0", 1, 1, 5, 5)
        put(f"body.{i}.gridientattention.conv2.2", 1, 1, 5, 5)
        put(f"body.{i}.gridientattention.conv3", 1, c, 5, 5)
        c_in = c
    put(f"body.{config.depth}", c0, c_in, k, k)
    put("tail.0", config.out_channels, c0, k, k)
    put("sub_mean", 3, 3, 1, 1)
    put("add_mean", 3, 3, 1, 1)
    return sd


@pytest.mark.parametrize("kind", KINDS)
def test_load_authors_checkpoint(kind: str) -> None:
    # The paper layout with a short, narrow schedule keeps this fast; mapping is by name.
    net = build_net(kind, "paper", channels=(8, 8, 16, 8))
    sd = _authors_state_dict(net.config)
    load_authors_checkpoint(net, sd)
    assert torch.equal(net.head.weight, sd["module.head.0.weight"])
    assert torch.equal(net.body_out.bias, sd["module.body.4.bias"])
    assert torch.equal(net.body[2].channel.fc1.weight[:, :, 0],
                       sd["module.body.2.channelattention.ca.0.weight"])
    source = ("spatialattention.conv.0" if kind == "dprnet" else "gridientattention.conv3")
    assert torch.equal(net.body[3].attention.squeeze.weight,
                       sd[f"module.body.3.{source}.weight"])
    with pytest.raises(ValueError):
        load_authors_checkpoint(build_net(kind, "lite"), sd)
    del sd["module.tail.0.bias"]
    with pytest.raises(ValueError):
        load_authors_checkpoint(net, sd)
