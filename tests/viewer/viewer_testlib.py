"""Helpers shared by the viewer tests: a tiny model, and an X server for the GUI tests.

(Not a conftest.py: the tests folder has no __init__.py, and a second conftest module there would
clash with tests/conftest.py by name.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

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
