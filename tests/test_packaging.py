"""pyproject.toml: every console script names a callable that exists, and the dependencies come
from requirements.txt (one list)."""

import importlib
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_console_scripts_resolve():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    assert {"epigraf-viewer", "epigraf-train", "epigraf-generate", "epigraf-import-official"} <= scripts.keys()
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
