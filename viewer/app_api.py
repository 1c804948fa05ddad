"""What the panels, shortcuts and drag-and-drop see of the application: its options, timings and the
`ViewerApi` protocol (state, the loaded model, the workers, and a few actions).

Panels draw from and act through this interface; `viewer.app.ViewerApp` implements it, and
`viewer.runner` wires the panels' per-frame hooks, so the app itself never imports a panel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from .bake_jobs import BakeController
from .export import ExportJob
from .mesh_jobs import MeshController
from .model import ModelLoader
from .render_worker import RenderWorker
from .rendering import LoadedModel, RenderEngine, RenderRequest, RenderResult
from .state import ViewerState
from .train_controller import TrainingController


@dataclass
class AppOptions:
    """How the app runs: device, scripted screenshot mode, session use, test hooks."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    screenshot: Path | None = None  # scripted: save the full-quality render here, then exit
    window_screenshot: Path | None = None  # scripted: also save the whole window
    frames: int = 3  # scripted: at least this many GUI frames before the capture
    camera_text: str | None = None  # first model's camera: 'yaw,pitch[,r[,fov]]', 'mean', or None (keep the state's)
    timeout_s: float = 300.0  # scripted: give up (exit 1) after this long
    use_session: bool = True
    window_size: tuple[int, int] = (1440, 900)
    register_tests: Callable[[], None] | None = None  # imgui test engine hook (GUI tests)
    attach_run: bool = False  # follow the run in state.train.outdir from the start (run_viewer.py --attach)


@dataclass
class Perf:
    """Timings for the performance panel."""

    frame_ms: deque = field(default_factory=lambda: deque(maxlen=300))
    arrivals: deque = field(default_factory=lambda: deque(maxlen=120))  # times new frames were shown
    first_frame_s: float | None = None
    full_refine_s: float | None = None  # last time from a still view's request to its full-quality frame

    def display_fps(self, now: float, window: float = 2.0) -> float:
        recent = [t for t in self.arrivals if now - t <= window]
        return len(recent) / window


class ViewerApi(Protocol):
    """The application as the panels use it."""

    state: ViewerState
    options: AppOptions
    device: torch.device
    model: LoadedModel | None
    model_error: str | None
    result: RenderResult | None
    loader: ModelLoader
    worker: RenderWorker
    engine: RenderEngine
    mesh: MeshController
    bakes: BakeController  # the baked GL preview while the camera moves
    perf: Perf
    export_job: ExportJob | None
    messages: dict[str, str]  # panel -> its last message (errors shown in the window)
    ui_text: dict[str, str]  # text fields' contents between frames
    file_dialog: Any  # viewer.panels.file_dialog.FileDialog, set by the runner
    training: TrainingController  # the training panel's run, dataset tool and actions
    torch_threads: int
    drop_enabled: bool
    dragging: bool

    def open_model(self, spec: str, keep_camera: bool = False) -> None: ...

    def camera_changed(self) -> None: ...

    def latent_spec(self) -> Any: ...

    def current_request(self, interactive: bool = False, baked: bool = False) -> RenderRequest | None: ...

    def display_texture(self, size: int) -> int | None: ...

    def request_thumbnail(self, seed: int) -> object | None: ...

    def save_screenshot_async(self, path: Path | None = None) -> None: ...
