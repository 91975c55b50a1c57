"""Blocks of DPRNet and GGIRNet: channel, spatial and gradient attention, residual attention block.

All tensors are feature maps (B, C, H, W). Only convolutions, ReLU, sigmoid, element-wise
products and sums, replicate padding, a global average pool and a concat are used, so the
networks export to ONNX and build in TensorRT without plugins.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Attention = Literal["spatial", "gradient"]

# Sobel kernels as the authors apply them (cross-correlation). Their y kernel is positive at the
# top row (y pointing up); the shared C->1 conv sees gx and gy through the same weights, so the
# sign matters for loading their checkpoints and we keep it.
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


def same_conv(in_channels: int, out_channels: int, kernel_size: int,
              dilation: int = 1) -> nn.Conv2d:
    """Stride-1 conv with bias whose zero padding keeps H x W (odd ``kernel_size`` only)."""
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    return nn.Conv2d(in_channels, out_channels, kernel_size,
                     padding=dilation * (kernel_size // 2), dilation=dilation, bias=True)


def init_gate_conv(conv: nn.Conv2d, mean: bool = True) -> nn.Conv2d:
    """Initialise a conv of a 1-channel gate path: zero bias and, if ``mean``, a mean filter.

    The gates' 1-channel conv-ReLU chains die easily: with default init a conv whose taps and
    bias happen to be negative maps a non-negative input (ReLU features) to <= 0 everywhere,
    its ReLU blocks all gradient and the gate freezes at a constant for good (several gates
    per freshly built network). A mean filter keeps a non-negative input non-negative and a zero
    bias keeps a signed input (Sobel responses) signed, so every gate starts alive; training
    may still make taps negative later.
    """
    with torch.no_grad():
        if mean:
            conv.weight.fill_(1.0 / conv.weight[0].numel())
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


class ChannelAttention(nn.Module):
    """Channel gate ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``.

    The two layers act on the pooled (B, C, 1, 1) vector. ``taps`` > 1 reproduces the authors'
    layers, ``Conv1d(C, C, 5, padding="same")`` over a length-1 sequence: only the centre tap
    ever meets data, the others only meet zero padding, so they are dead weights that never get a
    gradient. They are kept (``taps=5``) only where fidelity to the published parameter count and
    checkpoint layout matters.

    Args:
        channels: C.
        reduction: hidden width is ``C // reduction`` (at least 1).
        taps: odd width of the two layers along a dummy axis; 1 gives plain 1x1 layers.
    """

    def __init__(self, channels: int, reduction: int = 1, taps: int = 1) -> None:
        super().__init__()
        if taps % 2 != 1 or reduction < 1:
            raise ValueError(f"taps must be odd and reduction >= 1, got {taps}, {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, (1, taps), padding=(0, taps // 2))
        self.fc2 = nn.Conv2d(hidden, channels, (1, taps), padding=(0, taps // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        pooled = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(pooled))))


class SpatialAttention(nn.Module):
    """Spatial gate: 1x1 conv C->1, ReLU, k x k conv, ReLU, k x k conv, sigmoid, times ``x``.

    Args:
        channels: C.
        kernel_size: odd k of the two single-channel convs.
    """

    def __init__(self, channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.squeeze = init_gate_conv(nn.Conv2d(channels, 1, 1))
        self.conv1 = init_gate_conv(same_conv(1, 1, kernel_size))
        self.conv2 = init_gate_conv(same_conv(1, 1, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        mask = self.conv2(F.relu(self.conv1(F.relu(self.squeeze(x)))))
        return x * torch.sigmoid(mask)


class SobelFilter(nn.Module):
    """Fixed depthwise Sobel x/y of every channel, replicate-padded to keep H x W.

    The kernels are non-persistent buffers: they follow ``.to()`` but are neither trainable
    parameters nor part of a ``state_dict``.
    """

    kx: torch.Tensor
    ky: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        kx = torch.tensor(_SOBEL_X).expand(channels, 1, 3, 3).clone()
        ky = torch.tensor(_SOBEL_Y).expand(channels, 1, 3, 3).clone()
        self.register_buffer("kx", kx, persistent=False)
        self.register_buffer("ky", ky, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> (gx, gy), each (B, C, H, W), in feature units per pixel (x4 scale)."""
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        gx = F.conv2d(padded, self.kx, groups=self.channels)
        gy = F.conv2d(padded, self.ky, groups=self.channels)
        return gx, gy


class GradientAttention(nn.Module):
    """GGIRNet's gradient attention: a spatial gate computed from the features' gradients.

    Sobel x/y of the features, a shared k x k conv C->1 on each, the same two k x k
    single-channel convs (each with ReLU) on each, concat, k x k conv 2->1, sigmoid, times ``x``.
    The gate can thus react to the oriented edges rain streaks add, which SIFT's orientation
    histograms and descriptors are built from.

    Args:
        channels: C.
        kernel_size: odd k of all its learnt convs.
    """

    def __init__(self, channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.sobel = SobelFilter(channels)
        self.squeeze = init_gate_conv(same_conv(channels, 1, kernel_size), mean=False)
        self.conv1 = init_gate_conv(same_conv(1, 1, kernel_size))
        self.conv2 = init_gate_conv(same_conv(1, 1, kernel_size))
        self.fuse = same_conv(2, 1, kernel_size)

    def _branch(self, g: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(self.squeeze(g)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        gx, gy = self.sobel(x)
        mask = self.fuse(torch.cat([self._branch(gx), self._branch(gy)], dim=1))
        return x * torch.sigmoid(mask)


class ResidualAttentionBlock(nn.Module):
    """conv-ReLU-conv-ReLU, channel attention, spatial or gradient attention, plus a shortcut.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: odd k of the two main convs.
        attention: ``"spatial"`` (DPRNet) or ``"gradient"`` (GGIRNet).
        attention_kernel_size: odd k of the attention convs.
        dilation: dilation of the first main conv only; the undilated second conv then fills
            the holes a dilated conv leaves (no gridding) while the receptive field still grows.
        ca_reduction: channel-attention hidden width divisor.
        ca_taps: channel-attention layer taps (see :class:`ChannelAttention`).
        project_shortcut: use a 1x1 conv shortcut even when C_in == C_out (the authors do);
            otherwise the shortcut is the identity unless the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 attention: Attention, attention_kernel_size: int = 5, dilation: int = 1,
                 ca_reduction: int = 1, ca_taps: int = 1,
                 project_shortcut: bool = False) -> None:
        super().__init__()
        self.conv1 = same_conv(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = same_conv(out_channels, out_channels, kernel_size)
        self.channel = ChannelAttention(out_channels, ca_reduction, ca_taps)
        self.attention: nn.Module
        if attention == "spatial":
            self.attention = SpatialAttention(out_channels, attention_kernel_size)
        elif attention == "gradient":
            self.attention = GradientAttention(out_channels, attention_kernel_size)
        else:
            raise ValueError(f"attention must be 'spatial' or 'gradient', got {attention!r}")
        self.shortcut: nn.Module
        if project_shortcut or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        y = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.attention(self.channel(y)) + self.shortcut(x)
