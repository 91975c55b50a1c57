"""Shipped network weights (safetensors inside the package) and loading them into the nets."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..nets import DerainNet, build_net

# What each derain mode runs: detection net and description net. "l1" is the ablation: one
# pixel-L1 network serving both.
MODELS = {"ours": ("dprnet", "ggirnet"), "l1": ("l1", "l1")}


class MissingWeightsError(FileNotFoundError):
    """Weights for a network are missing or unreadable; the message names the file."""


def weights_dir() -> Path:
    return Path(str(files("siftrain_ros") / "weights"))


def weights_path(name: str, preset: str = "lite", directory: Path | None = None) -> Path:
    """``<dir>/<name>_<preset>.safetensors`` (name: dprnet, ggirnet or l1)."""
    return (directory or weights_dir()) / f"{name}_{preset}.safetensors"


def load_net(name: str, preset: str = "lite", directory: Path | None = None) -> DerainNet:
    """Build a network and load its shipped weights.

    Raises:
        MissingWeightsError: the file is missing, truncated or does not fit the network.
    """
    path = weights_path(name, preset, directory)
    kind = "dprnet" if name == "l1" else name  # the ablation uses DPRNet's architecture
    net = build_net(kind, preset)
    if not path.is_file():
        raise MissingWeightsError(f"weights file {path} not found (train with `siftrain train "
                                  f"{name}` or reinstall the package)")
    load_weights_into(net, path, f"{preset} {kind}")
    return net.eval()


def load_weights_into(net: torch.nn.Module, path: Path, description: str) -> None:
    """Load a safetensors file into ``net`` in place.

    Args:
        net: the network, built with the architecture the file was saved from.
        path: the ``.safetensors`` file.
        description: how error messages name the network, e.g. ``"lite dprnet"``.

    Raises:
        MissingWeightsError: the file is missing, truncated or does not fit ``net``.
    """
    if not path.is_file():
        raise MissingWeightsError(f"weights file {path} not found")
    try:
        net.load_state_dict(load_file(str(path)))
    except (SafetensorError, RuntimeError, OSError) as error:
        raise MissingWeightsError(f"weights file {path} is unreadable or does not fit the "
                                  f"{description} network: {error}") from error


def load_derain_nets(model: str = "ours", preset: str = "lite", directory: Path | None = None
                     ) -> tuple[DerainNet, DerainNet]:
    """(detection net, description net) for ``model`` in {ours, l1}."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    detect_name, describe_name = MODELS[model]
    detect_net = load_net(detect_name, preset, directory)
    describe_net = detect_net if describe_name == detect_name else load_net(
        describe_name, preset, directory)
    return detect_net, describe_net


def save_net(net: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write a network's weights as safetensors (atomic: temp file + rename)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
              metadata=metadata)
    tmp.replace(path)
