"""Shared fixtures: where the research datasets live (../shared/data beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$SIFTRAIN_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("SIFTRAIN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"research datasets not found at {path} (set SIFTRAIN_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shipped_backend():  # -> TorchBackend (imported lazily: most tests need no networks)
    """The shipped lite DPRNet and GGIRNet on the torch backend, CPU."""
    from siftrain_ros.frontend import TorchBackend, load_derain_nets

    return TorchBackend(*load_derain_nets("ours", "lite"))
