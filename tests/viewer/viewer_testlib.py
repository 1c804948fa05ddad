"""Helpers shared by the viewer tests: a tiny model, and an X server for the GUI tests.

(Not a conftest.py: the tests folder has no __init__.py, and a second conftest module there would
clash with tests/conftest.py by name.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.checkpoint import build_generator
from core.config import ModelConfig
from tests.conftest import tiny_config
from viewer.rendering import LoadedModel


def tiny_cfg() -> ModelConfig:
    """A demo-shaped config that renders in milliseconds (the core tests' tiny config)."""
    return tiny_config()


def tiny_model(seed: int = 0) -> LoadedModel:
    G = build_generator(tiny_cfg(), seed=seed).eval().requires_grad_(False)
    return LoadedModel(G, {"source": "tiny"}, "tiny", torch.device("cpu"))


def start_xvfb() -> tuple[subprocess.Popen | None, str]:
    """Start Xvfb on a free display number; returns (process, display) or (None, reason it cannot)."""
    exe = shutil.which("Xvfb")
    if exe is None:
        return None, "Xvfb is not installed (apt-get install xvfb libgl1-mesa-dri libglx-mesa0)"
    for n in range(90, 140):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                return proc, f":{n}"
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
    return None, "could not start an X server with Xvfb"


def gui_env(display: str, config_dir: Path) -> dict[str, str]:
    """Environment for a viewer subprocess: software OpenGL on `display`, a private config folder."""
    env = dict(os.environ)
    env.update(DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1", EPIGRAF_STUDIO_CONFIG_DIR=str(config_dir),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    env.pop("WAYLAND_DISPLAY", None)
    return env


def run_gui_driver(driver: Path, args: list[str], tmp: Path, out: Path, timeout: float) -> tuple[dict, str]:
    """Run a GUI driver script (tests/viewer/gui_*driver*.py) under a fresh Xvfb: `driver OUT *args`.

    Skips the calling test when no X server can be started. Returns (its results.json, its stdout)
    after checking that it wrote one, raised nothing and timed out on no step.
    """
    xvfb, display = start_xvfb()
    if xvfb is None:
        pytest.skip(f"GUI tests skipped: {display}")
    path = out / "results.json"
    try:
        proc = subprocess.run([sys.executable, str(driver), str(out), *args], env=gui_env(display, tmp / "config"),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:  # say how far it got (the driver saves after every step)
        got = json.loads(path.read_text()) if path.exists() else "no results.json"
        tail = (e.stdout or b"")[-2000:]
        raise AssertionError(f"{driver.name} ran over {timeout} s; its partial results: {got}\n"
                             f"stdout tail: {tail.decode(errors='replace') if isinstance(tail, bytes) else tail}"
                             ) from None
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    assert path.exists(), f"the driver wrote no results (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    results = json.loads(path.read_text())
    assert not results.get("partial"), f"the driver stopped before the end (rc {proc.returncode}): {results}"
    assert "exception" not in results and "run_error" not in results, \
        results.get("exception") or results.get("run_error")
    assert not results.get("timeouts"), f"steps timed out: {results['timeouts']}\n{proc.stdout[-2000:]}"
    return results, proc.stdout
