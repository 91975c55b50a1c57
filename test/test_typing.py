"""mypy --strict on the TensorRT code against tensorrt-stubs (patched copy, see below).

tensorrt-stubs 10.13 as shipped does not load in mypy: no ``py.typed``, parameters named ``in``
(a keyword), a required parameter after defaults in ``add_scale_nd``, and a module-level
``bool: DataType`` that shadows the builtin. The test copies the stubs to a temp dir, fixes
exactly those lines and points MYPYPATH at the copy; pyproject.toml ignores the stubs' own
remaining errors, so only our use of the API is judged.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_FIXES = [
    (re.compile(r"\((self(: IPluginV3)?), in: "), r"(\1, in_: "),
    (re.compile(r"channel_axis: int\)"), "channel_axis: int = ...)"),
    (re.compile(r"^bool: .*DataType.*$", re.MULTILINE), ""),
]


def _stub_dir(package: str) -> Path | None:
    # importlib cannot import a stub-only package's .pyi; find it beside the other packages.
    for entry in map(Path, sys.path):
        candidate = entry / package
        if (candidate / "__init__.pyi").is_file():
            return candidate
    return None


def patched_stubs(target: Path) -> Path:
    """Copy tensorrt and tensorrt_bindings stubs into ``target`` and apply the fixes."""
    for package in ("tensorrt", "tensorrt_bindings"):
        source = _stub_dir(package)
        if source is None:
            pytest.skip(f"{package} stubs not found: pip install --no-deps "
                        "tensorrt-stubs==10.13.0.35.1 (make setup does)")
        copy = target / package
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.py", "*.so", "__pycache__"))
        (copy / "py.typed").write_text("")
        for stub in copy.glob("*.pyi"):
            text = stub.read_text()
            for pattern, replacement in _FIXES:
                text = pattern.sub(replacement, text)
            stub.write_text(text)
    return target


def test_tensorrt_code_type_checks_against_the_stubs(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (requirements-dev.txt pins it; run make setup)")
    stubs = patched_stubs(tmp_path / "stubs")
    # A cache inside .venv (git-ignored, per checkout) keeps re-runs at a few seconds.
    cache = Path(sys.prefix) / ".mypy_cache"
    env = {**os.environ, "MYPYPATH": str(stubs)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
         "--config-file", str(REPO / "pyproject.toml"), "siftrain_ros/engines"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
