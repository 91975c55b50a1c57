"""The generic deraining network behind DPRNet and GGIRNet, and its configuration.

head conv -> residual attention blocks -> closing conv, with a long skip from the head -> tail
conv; optionally wrapped in pixel-unshuffle / pixel-shuffle (work at 1/s resolution) and a
residual over the input image (``out = x + f(x)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Attention, ResidualAttentionBlock, same_conv


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a :class:`DerainNet`.

    Attributes:
        in_channels: input image channels (1 gray, 3 RGB).
        out_channels: output image channels.
        kernel_size: odd k of the head, block, closing and tail convs.
        channels: output channels of each residual attention block, in order. The head outputs
            ``channels[0]`` and the closing conv maps ``channels[-1]`` back to it for the long
            skip. Its length is the depth.
        attention: ``"spatial"`` (DPRNet) or ``"gradient"`` (GGIRNet).
        downsample: s; the image is replicate-padded to a multiple of s, pixel-unshuffled
            (C -> C s^2 at H/s x W/s) before the head and pixel-shuffled after the tail, so all
            blocks run at 1/s resolution with an s-times larger receptive field.
        dilations: dilation of the first conv of each block (same length as ``channels``), or
            empty for no dilation.
        attention_kernel_size: odd k of the spatial / gradient attention convs.
        ca_reduction: channel-attention hidden width divisor.
        ca_taps: channel-attention layer taps (5 reproduces the authors' dead Conv1d taps).
        project_all_shortcuts: 1x1 conv shortcuts in every block, as the authors have.
        centre_input: feed ``2 x - 1`` to the head: the authors normalise the rainy input to
            [-1, 1] (while the target stays in [0, 1]), and without normalisation layers a
            zero-centred input is easier to learn from anyway.
        residual_output: return ``x + f(x)``; needs ``in_channels == out_channels``.
        tail_init_scale: factor on the tail conv's default initial weights and bias; a small
            value with ``residual_output`` makes the untrained network a near-identity while
            gradients still reach every layer (an exact zero would block them at the start).
    """

    in_channels: int
    out_channels: int
    kernel_size: int
    channels: tuple[int, ...]
    attention: Attention
    downsample: int = 1
    dilations: tuple[int, ...] = ()
    attention_kernel_size: int = 5
    ca_reduction: int = 1
    ca_taps: int = 1
    project_all_shortcuts: bool = False
    centre_input: bool = True
    residual_output: bool = True
    tail_init_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"channel counts must be >= 1, got {self.in_channels}, "
                             f"{self.out_channels}")
        if self.kernel_size % 2 != 1 or self.attention_kernel_size % 2 != 1:
            raise ValueError("kernel sizes must be odd, got "
                             f"{self.kernel_size}, {self.attention_kernel_size}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive ints, "
                             f"got {self.channels}")
        if self.attention not in ("spatial", "gradient"):
            raise ValueError(f"attention must be 'spatial' or 'gradient', got {self.attention!r}")
        if self.downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {self.downsample}")
        if self.dilations and (len(self.dilations) != len(self.channels)
                               or min(self.dilations) < 1):
            raise ValueError(f"dilations must be empty or {len(self.channels)} ints >= 1, "
                             f"got {self.dilations}")
        if self.residual_output and self.in_channels != self.out_channels:
            raise ValueError("residual_output needs in_channels == out_channels")

    @property
    def depth(self) -> int:
        """Number of residual attention blocks."""
        return len(self.channels)


class DerainNet(nn.Module):
    """Image-to-image deraining CNN (DPRNet or GGIRNet, depending on ``config.attention``).

    Input and output are float images (B, C, H, W) with intensities in 0..1; any H, W >= 1 is
    accepted (padded internally to a multiple of ``config.downsample`` and cropped back). The
    output is not clamped.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        s, k = config.downsample, config.kernel_size
        width = config.channels[0]
        dilations = config.dilations or (1,) * config.depth
        self.unshuffle: nn.Module = nn.PixelUnshuffle(s) if s > 1 else nn.Identity()
        self.head = same_conv(config.in_channels * s * s, width, k)
        blocks = []
        c_in = width
        for c_out, dilation in zip(config.channels, dilations, strict=True):
            blocks.append(ResidualAttentionBlock(
                c_in, c_out, k, config.attention, config.attention_kernel_size, dilation,
                config.ca_reduction, config.ca_taps, config.project_all_shortcuts))
            c_in = c_out
        self.body = nn.Sequential(*blocks)
        self.body_out = same_conv(c_in, width, k)
        self.tail = same_conv(width, config.out_channels * s * s, k)
        self.shuffle: nn.Module = nn.PixelShuffle(s) if s > 1 else nn.Identity()
        if config.tail_init_scale != 1.0:
            with torch.no_grad():
                self.tail.weight.mul_(config.tail_init_scale)
                self.tail.bias.mul_(config.tail_init_scale)

    @property
    def stride(self) -> int:
        """Input sizes are padded to a multiple of this internally."""
        return self.config.downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Derain ``x`` (B, C_in, H, W), intensity 0..1 -> (B, C_out, H, W), intensity ~0..1."""
        s = self.config.downsample
        height, width = x.shape[-2], x.shape[-1]
        padded = x
        if s > 1:
            # Round up with floor division rather than ``-h % s``: exports as an integer Div
            # (no Mod) on the shape. Replicate, not reflect: valid for any size, even 1x1.
            pad_h = (height + s - 1) // s * s - height
            pad_w = (width + s - 1) // s * s - width
            padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        feed = padded * 2.0 - 1.0 if self.config.centre_input else padded
        feat = self.head(self.unshuffle(feed))
        feat = self.body_out(self.body(feat)) + feat
        out = self.shuffle(self.tail(feat))
        if s > 1:
            out = out[..., :height, :width]
        return x + out if self.config.residual_output else out
