"""Opening models for the viewer: resolve a spec in a background thread, list a run folder's snapshots.

A spec is whatever `core.checkpoint.load_generator` accepts (a checkpoint file, a run folder, or
demo or random:PRESET). With no argument and no session the viewer opens the bundled demo model
(`default_model_spec`), or `DEFAULT_MODEL_SPEC` (random:demo) if its file is missing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import torch

from core import checkpoint
from core.checkpoint import BUNDLED_DEMO, DEMO_SPEC, demo_path, load_generator
from core.errors import UserError

from .rendering import LoadedModel

DEFAULT_MODEL_SPEC = "random:demo"

BUNDLED_DEMO_CHECKPOINT: Path | None = BUNDLED_DEMO
"""The bundled demo model (checkpoints/demo.pt): `demo` resolves to it and it is the model opened by
default; random:demo stands in if the file is missing."""


def default_model_spec() -> str:
    """The model opened when none is given: the bundled demo model once it ships, else random:demo."""
    if BUNDLED_DEMO_CHECKPOINT is not None and BUNDLED_DEMO_CHECKPOINT.exists():
        return str(BUNDLED_DEMO_CHECKPOINT)
    return DEFAULT_MODEL_SPEC


def resolve_spec(spec: str) -> str:
    """Normalise a user-typed spec: strip quotes/space, expand ~, map `demo` to the bundled model."""
    spec = spec.strip().strip("'\"")
    if not spec:
        raise UserError("type a checkpoint path, a run folder or random:PRESET")
    if spec.startswith("random:"):
        return spec
    if spec == DEMO_SPEC:
        return str(demo_path(BUNDLED_DEMO_CHECKPOINT))
    return str(Path(spec).expanduser())


def list_snapshots(run_dir: str | Path) -> list[Path]:
    """The run folder's network-snapshot-*.pt files (else an official run's *.pkl), newest first."""
    d = Path(run_dir).expanduser()
    if not d.is_dir():
        raise UserError(f"'{d}' is not a folder")
    return checkpoint.list_snapshots(d) or [checkpoint.newest_snapshot(d)]  # none: newest_snapshot's error


class ModelLoader:
    """Loads one model at a time off the GUI thread; `poll()` returns (model, error) once done."""

    def __init__(self, device: torch.device):
        self.device = device
        self._lock = threading.Lock()
        self._done: tuple[LoadedModel | None, str | None, str] | None = None
        self._thread: threading.Thread | None = None
        self.loading: str | None = None  # the spec being loaded
        self.started_at = 0.0

    def load(self, spec: str) -> None:
        """Start loading `spec` (a later call wins over an unfinished earlier one)."""
        self.loading = spec
        self.started_at = time.monotonic()

        def work() -> None:
            model, error = None, None
            try:
                s = resolve_spec(spec)
                G, info = load_generator(s, self.device)
                model = LoadedModel(G, info, s, self.device)
            except UserError as e:
                error = str(e)
            except Exception as e:  # an unexpected failure is shown in the window, never a crash
                error = f"could not open '{spec}': {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            with self._lock:
                if self.loading == spec:
                    self._done = (model, error, spec)

        self._thread = threading.Thread(target=work, name="model-loader", daemon=True)
        self._thread.start()

    def poll(self) -> tuple[LoadedModel | None, str | None, str] | None:
        """(model or None, error or None, spec) when a load finished since the last poll."""
        with self._lock:
            done, self._done = self._done, None
        if done is not None:
            self.loading = None
        return done

    def wait(self, timeout: float = 60.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
