"""DPRNet and GGIRNet: the deraining networks of "See SIFT in a Rain", in two presets."""

from .blocks import (
    ChannelAttention,
    GradientAttention,
    ResidualAttentionBlock,
    SobelFilter,
    SpatialAttention,
)
from .complexity import count_macs, count_parameters, describe_presets
from .derain_net import DerainNet, NetConfig
from .presets import KINDS, PRESETS, build_net, load_authors_checkpoint, net_config

__all__ = [
    "KINDS",
    "PRESETS",
    "ChannelAttention",
    "DerainNet",
    "GradientAttention",
    "NetConfig",
    "ResidualAttentionBlock",
    "SobelFilter",
    "SpatialAttention",
    "build_net",
    "count_macs",
    "count_parameters",
    "describe_presets",
    "load_authors_checkpoint",
    "net_config",
]
