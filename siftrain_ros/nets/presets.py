"""The ``paper`` and ``lite`` configurations of DPRNet and GGIRNet, builders, checkpoint mapping.

``paper`` reproduces the published architecture (RGB, full resolution, 5x5 convs, 28 blocks,
about 26.8 M parameters and 22 M MAC per pixel per network). ``lite`` is ours: gray in and out,
sized for TensorRT FP16 on a Jetson-class GPU (see :data:`LITE_CHANNELS` for the reasoning).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

import torch

from .blocks import Attention
from .derain_net import DerainNet, NetConfig

Kind = Literal["dprnet", "ggirnet"]
Preset = Literal["paper", "lite"]

KINDS: tuple[Kind, ...] = ("dprnet", "ggirnet")
PRESETS: tuple[Preset, ...] = ("paper", "lite")
_ATTENTION: dict[str, Attention] = {"dprnet": "spatial", "ggirnet": "gradient"}

# The authors' schedule: 32,32 -> 64 (x6) -> 128 (x4) -> 256 (x4) -> 128 (x4) -> 64 (x6) -> 32,32.
PAPER_CHANNELS: tuple[int, ...] = ((32,) * 2 + (64,) * 6 + (128,) * 4 + (256,) * 4
                                   + (128,) * 4 + (64,) * 6 + (32,) * 2)

# lite: pixel-unshuffle by 4, so 8 blocks of 64 channels run on 160x120 for a 640x480 frame
# (~12 GMAC, ~0.7 M parameters). At 1/4 resolution each MAC buys 16x the parameters of a
# full-resolution net and 1/3 of the activation traffic of a 1/2-resolution one (the Jetson's
# real limit), and the receptive field reaches ~270 px, enough for long streaks. Detail is
# not lost: the unshuffle is lossless and the net predicts only the rain residual over x.
LITE_CHANNELS: tuple[int, ...] = (64,) * 8
LITE_DILATIONS: tuple[int, ...] = (1, 2, 4, 8, 4, 2, 1, 1)


def net_config(kind: Kind, preset: Preset = "lite") -> NetConfig:
    """The :class:`NetConfig` of network ``kind`` ("dprnet" | "ggirnet") in ``preset``."""
    if kind not in _ATTENTION:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    attention = _ATTENTION[kind]
    if preset == "paper":
        return NetConfig(in_channels=3, out_channels=3, kernel_size=5, channels=PAPER_CHANNELS,
                         attention=attention, downsample=1, attention_kernel_size=5,
                         ca_reduction=1, ca_taps=5, project_all_shortcuts=True,
                         centre_input=True, residual_output=False)
    if preset == "lite":
        return NetConfig(in_channels=1, out_channels=1, kernel_size=3, channels=LITE_CHANNELS,
                         attention=attention, downsample=4, dilations=LITE_DILATIONS,
                         attention_kernel_size=5, ca_reduction=4, ca_taps=1,
                         project_all_shortcuts=False, centre_input=True, residual_output=True,
                         tail_init_scale=0.01)
    raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")


def build_net(kind: Kind, preset: Preset = "lite", **overrides: Any) -> DerainNet:
    """Build DPRNet (``kind="dprnet"``) or GGIRNet (``"ggirnet"``) in ``preset``.

    Args:
        kind: "dprnet" (spatial attention) or "ggirnet" (gradient attention).
        preset: "paper" (published, RGB, ~26.8 M parameters) or "lite" (gray, real time).
        overrides: :class:`NetConfig` fields to replace, e.g. ``in_channels=3``.

    Returns:
        A freshly initialised :class:`DerainNet` mapping (B, C, H, W) images in 0..1 to
        (B, C, H, W); built on the current default device (``with torch.device("meta")``
        builds it without memory).
    """
    config = net_config(kind, preset)
    if overrides:
        config = dataclasses.replace(config, **overrides)
    return DerainNet(config)


# (authors' key pattern, our key template); the attention module depends on the network.
_AUTHORS_COMMON = [
    (r"head\.0\.(weight|bias)", "head.{0}"),
    (r"tail\.0\.(weight|bias)", "tail.{0}"),
    (r"body\.(\d+)\.block\.0\.(weight|bias)", "body.{0}.conv1.{1}"),
    (r"body\.(\d+)\.block\.2\.(weight|bias)", "body.{0}.conv2.{1}"),
    (r"body\.(\d+)\.shortcut\.(weight|bias)", "body.{0}.shortcut.{1}"),
    (r"body\.(\d+)\.channelattention\.ca\.0\.(weight|bias)", "body.{0}.channel.fc1.{1}"),
    (r"body\.(\d+)\.channelattention\.ca\.2\.(weight|bias)", "body.{0}.channel.fc2.{1}"),
]
_AUTHORS_ATTENTION = {
    "spatial": [
        (r"body\.(\d+)\.spatialattention\.conv\.0\.(weight|bias)",
         "body.{0}.attention.squeeze.{1}"),
        (r"body\.(\d+)\.spatialattention\.conv\.2\.(weight|bias)",
         "body.{0}.attention.conv1.{1}"),
        (r"body\.(\d+)\.spatialattention\.conv\.4\.(weight|bias)",
         "body.{0}.attention.conv2.{1}"),
    ],
    "gradient": [
        (r"body\.(\d+)\.gridientattention\.conv3\.(weight|bias)",
         "body.{0}.attention.squeeze.{1}"),
        (r"body\.(\d+)\.gridientattention\.conv2\.0\.(weight|bias)",
         "body.{0}.attention.conv1.{1}"),
        (r"body\.(\d+)\.gridientattention\.conv2\.2\.(weight|bias)",
         "body.{0}.attention.conv2.{1}"),
        (r"body\.(\d+)\.gridientattention\.conv1\.(weight|bias)",
         "body.{0}.attention.fuse.{1}"),
    ],
}
# Present in the authors' checkpoints but unused by their forward pass (mean shifts, and the
# attention branch of the other network, which every block constructs).
_AUTHORS_UNUSED = re.compile(r"(sub_mean|add_mean)\..*|body\.\d+\.(spatialattention|"
                             r"gridientattention)\..*")


def load_authors_checkpoint(model: DerainNet, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a state_dict saved by the authors' DPRNet / GGIRNet code into a ``paper`` model.

    Handles their ``DataParallel`` ``module.`` prefix, their body index of the closing conv
    (``body.<depth>``), their Conv1d channel-attention weights (C, C, 5) -> (C, C, 1, 5), and
    drops the modules their forward pass never uses. Their network expects the rainy input in
    [-1, 1]; ``centre_input`` in the ``paper`` preset does that from a 0..1 input.

    Raises:
        ValueError: the model is not in the authors' layout, or keys are missing/unexpected.
    """
    config = model.config
    if not (config.downsample == 1 and config.project_all_shortcuts and config.ca_taps == 5
            and not config.residual_output and not config.dilations):
        raise ValueError("load_authors_checkpoint needs a model in the authors' layout "
                         "(the 'paper' preset)")
    rules = _AUTHORS_COMMON + _AUTHORS_ATTENTION[config.attention] + [
        (rf"body\.{config.depth}\.(weight|bias)", "body_out.{0}")]
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        for pattern, template in rules:
            match = re.fullmatch(pattern, key)
            if match:
                target = template.format(*match.groups())
                if target in own and value.dim() == 3 and own[target].dim() == 4:
                    value = value.unsqueeze(2)
                mapped[target] = value
                break
        else:
            if not _AUTHORS_UNUSED.fullmatch(key):
                unexpected.append(key)
    missing = sorted(set(own) - set(mapped))
    unexpected += sorted(set(mapped) - set(own))
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]} ({len(missing)}, {len(unexpected)})")
    model.load_state_dict(mapped, strict=True)
