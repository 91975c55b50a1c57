"""Inference backends for the two networks: one small interface, several implementations.

A backend maps a gray frame to the two recovered images: DPRNet's (for the DoG pyramid, i.e.
detection) and GGIRNet's (for the gradients, i.e. orientation and description).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ..device import resolve_device
from ..nets import DerainNet


@dataclass
class DerainOutput:
    """Recovered images, (1, 1, H, W) float tensors in 0..1 on the backend's device."""

    detect: torch.Tensor
    describe: torch.Tensor


class BackendError(ValueError):
    """A backend cannot be made or run as asked (missing runtime, GPU, file, bad precision).

    A ``ValueError`` so that the command line reports it as one line, like other bad input.
    """


class DerainBackend(Protocol):
    """What the front end needs from a backend."""

    name: str
    device: torch.device

    def __call__(self, image: torch.Tensor) -> DerainOutput:
        """Derain a (1, 1, H, W) float frame in 0..1 (any H, W)."""
        ...


class TorchBackend:
    """Eager PyTorch on CPU or CUDA; fp16 autocast on CUDA when asked.

    Args:
        detect_net: DPRNet (or the ablation net) for the detection image.
        describe_net: GGIRNet (may be the same module as ``detect_net``).
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32`` or ``fp16`` (fp16 needs CUDA).
    """

    name = "torch"

    def __init__(self, detect_net: DerainNet, describe_net: DerainNet,
                 device: str | torch.device = "cpu", precision: str = "fp32"):
        self.device = resolve_device(device)
        if precision not in ("fp32", "fp16"):
            raise BackendError(f"the torch backend supports precision fp32 or fp16, got "
                               f"{precision!r} (int8 needs the tensorrt backend)")
        if precision == "fp16" and self.device.type != "cuda":
            raise BackendError("precision fp16 needs a CUDA device with the torch backend")
        self.precision = precision
        self.detect_net = detect_net.to(self.device).eval()
        self.describe_net = describe_net.to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> DerainOutput:
        image = image.to(self.device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.precision == "fp16"):
            detect = self.detect_net(image).float().clamp(0, 1)
            # One net for both (the L1 ablation): one image, so the front end builds one scale
            # space for it.
            describe = (detect if self.describe_net is self.detect_net else
                        self.describe_net(image).float().clamp(0, 1))
        return DerainOutput(detect=detect, describe=describe)
