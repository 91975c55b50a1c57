"""Bundled sample frames (TUM fr2/desk, HPatches v_churchill); see ATTRIBUTION.md."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np


def sample_dir() -> Path:
    """Directory holding the bundled samples."""
    return Path(str(files(__name__)))


def tum_frames() -> list[Path]:
    """The bundled TUM fr2/desk frames, in time order."""
    return sorted(sample_dir().glob("tum_fr2_desk_*.png"))


def hpatches_pair() -> tuple[Path, Path, np.ndarray]:
    """HPatches v_churchill images 1 and 2 and the homography mapping 1 -> 2."""
    d = sample_dir()
    return (d / "hpatches_v_churchill_1.png", d / "hpatches_v_churchill_2.png",
            np.loadtxt(d / "hpatches_v_churchill_H_1_2"))
