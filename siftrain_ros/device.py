"""Choosing the torch device, with a clear error where the asked-for one does not exist."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device) -> torch.device:
    """Validate a device string such as ``cpu``, ``cuda`` or ``cuda:1``.

    Raises:
        ValueError: the name is not a device, or CUDA is asked for where there is none.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {name!r}: use cpu or cuda[:N]") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available to torch "
                             f"{torch.__version__}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but only "
                             f"{torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r}: use cpu or cuda[:N]")
    return device
