"""Parameter and multiply-accumulate (MAC) counts of the networks.

MACs are counted for convolutions (including the fixed Sobel filters) and linear layers, the
operations that dominate; element-wise products, sums, activations and pooling are not counted.
Counting runs the model on the ``meta`` device, so even the ``paper`` networks at full HD are
counted instantly and without memory.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from .blocks import SobelFilter
from .presets import KINDS, PRESETS, build_net


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (buffers such as the Sobel kernels excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _macs_of(module: nn.Module, output: Any) -> int:
    """MACs of one call of a counted module for the whole batch."""
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        taps = math.prod(module.kernel_size) * module.in_channels // module.groups
        return output.numel() * taps
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, SobelFilter):
        # Two depthwise 3x3 filters: 9 MACs per output element each.
        return sum(g.numel() * 9 for g in output)
    return 0


def count_macs(model: nn.Module, height: int, width: int, in_channels: int | None = None) -> int:
    """MACs of one forward pass of ``model`` on a single (1, C, height, width) image.

    Args:
        model: any module; only its ``nn.Conv1d``/``nn.Conv2d``/``nn.Linear``/``SobelFilter``
            calls are counted, at the sizes they really run at (after internal padding).
        height: image rows in pixels.
        width: image columns in pixels.
        in_channels: C; by default ``model.config.in_channels`` or the first conv's input.

    Returns:
        Multiply-accumulates (one MAC = one multiply + one add).
    """
    if in_channels is None:
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "in_channels"):
            in_channels = int(config.in_channels)
        else:
            first = next(m for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d))
            in_channels = first.in_channels
    # A meta copy: shapes propagate, nothing is computed or allocated.
    meta_model = copy.deepcopy(model).to("meta")
    total = 0

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        total += _macs_of(module, output)

    handles = [m.register_forward_hook(hook) for m in meta_model.modules()
               if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear | SobelFilter)]
    try:
        with torch.no_grad():
            meta_model(torch.empty(1, in_channels, height, width, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


def describe_presets(height: int = 480, width: int = 640) -> list[dict[str, Any]]:
    """Parameters and GMAC per frame of every network in every preset.

    Args:
        height: frame rows in pixels.
        width: frame columns in pixels.

    Returns:
        One dict per (preset, network): ``preset``, ``network``, ``params`` (int),
        ``gmac`` (GMAC for one height x width frame), ``mac_per_pixel`` and the frame size.
    """
    rows = []
    for preset in PRESETS:
        for kind in KINDS:
            with torch.device("meta"):
                model = build_net(kind, preset)
            macs = count_macs(model, height, width)
            rows.append({"preset": preset, "network": kind, "params": count_parameters(model),
                         "gmac": macs / 1e9, "mac_per_pixel": macs / (height * width),
                         "height": height, "width": width})
    return rows
