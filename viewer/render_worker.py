"""Rendering off the GUI thread: latest request wins, progressive refinement, adaptive resolution.

The GUI submits a request whenever what it shows should change; each gets a generation number.
The worker keeps only the newest pending request (older ones are dropped unrendered), renders it
as a quick preview (resolution chosen by `AdaptiveResolution` to hold the target frame time, fewer
samples), then, when the request is not interactive (the camera is still), refines to full quality.
An EG3D model's preview keeps the output size and halves the neural resolution instead (its cost
is the neural render's; the super-resolution sees the whole image). A refinement that becomes
stale stops between tiles. Results only move forward: a result older than the one already
published is thrown away.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from core.errors import UserError

from .rendering import MIN_COARSE, Quality, RenderRequest, RenderResult, eg3d_preview, full_quality

RenderFn = Callable[[RenderRequest, Quality, Callable[[], bool]], "RenderResult | None"]


def reserve_gui_core() -> int:
    """Leave one CPU core to the GUI thread: torch uses max(1, cpu_count - 1) threads. Returns that number."""
    n = max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(n)
    return n


class AdaptiveResolution:
    """Picks the preview resolution so that a preview takes about `target_s` seconds.

    It learns the seconds per work unit (rays x samples) from finished renders (exponential moving
    average) and solves res^2 * samples * cost = target for res, rounded down to a multiple of `step`.
    """

    def __init__(self, target_s: float = 1 / 12, min_res: int = 32, step: int = 8, smoothing: float = 0.5,
                 first_res: int = 64):
        self.target_s = target_s
        self.min_res = min_res
        self.step = step
        self.smoothing = smoothing
        self.first_res = first_res
        self.cost_s: float | None = None  # seconds per work unit

    def observe(self, quality: Quality, seconds: float) -> None:
        """Record how long a render of `quality` took."""
        c = seconds / max(quality.cost, 1.0)
        self.cost_s = c if self.cost_s is None else (1 - self.smoothing) * self.cost_s + self.smoothing * c

    def predict(self, quality: Quality) -> float | None:
        """Predicted seconds for a render, or None before the first observation."""
        return None if self.cost_s is None else self.cost_s * quality.cost

    def choose(self, full: Quality, samples_mult: float = 0.5) -> Quality:
        """Preview quality for a view whose full quality is `full` (never above it)."""
        nc = max(MIN_COARSE, round(full.num_coarse * samples_mult))
        nf = max(0, round(full.num_fine * samples_mult))
        if self.cost_s is None:
            res = min(full.resolution, self.first_res)
        else:
            res = math.sqrt(self.target_s / (self.cost_s * (nc + nf)))
            res = int(res // self.step * self.step)
        res = max(min(res, full.resolution), min(self.min_res, full.resolution))
        return Quality(res, nc, nf, "preview")


@dataclass
class WorkerStats:
    """Counters shown in the performance panel and checked by the tests."""

    submitted: int = 0
    rendered: int = 0  # finished renders (all levels)
    dropped: int = 0  # requests replaced by a newer one before they started
    cancelled: int = 0  # refinements stopped because a newer request arrived
    published: int = 0


class RenderWorker:
    """A daemon thread that renders the newest request; poll() hands results to the GUI thread."""

    def __init__(self, render: RenderFn, adaptive: AdaptiveResolution | None = None,
                 progressive: bool = True, moving_samples: float = 0.5, adaptive_enabled: bool = True,
                 name: str = "render-worker"):
        self.render_fn = render
        self.adaptive = adaptive or AdaptiveResolution()
        self.progressive = progressive
        self.moving_samples = moving_samples
        self.adaptive_enabled = adaptive_enabled
        self.stats = WorkerStats()
        self.error: str | None = None  # the last render failure, one line
        self.render_times: deque[tuple[float, float, str]] = deque(maxlen=600)  # (when, seconds, level)
        self._cond = threading.Condition()
        self._pending: RenderRequest | None = None
        self._latest = 0
        self._busy = False
        self._stop = False
        self._result: RenderResult | None = None
        self._published_key: tuple[int, int] = (0, -1)  # (generation, level rank) of the newest published
        self._shown: tuple | None = None  # (view key, level) of the newest finished render
        self._idle_tasks: deque[Callable[[], None]] = deque()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ GUI side

    def configure(self, progressive: bool, adaptive_enabled: bool, moving_samples: float, target_s: float) -> None:
        """The render panel's settings, handed over under the worker's lock (the worker reads them
        together, once per request, in `plan`)."""
        with self._cond:
            self.progressive, self.adaptive_enabled, self.moving_samples = progressive, adaptive_enabled, moving_samples
            self.adaptive.target_s = target_s

    def submit(self, request: RenderRequest) -> int:
        """Queue a request (replacing any pending one); returns its generation number."""
        with self._cond:
            self._latest += 1
            if self._pending is not None:
                self.stats.dropped += 1
            self._pending = replace(request, generation=self._latest)
            self.stats.submitted += 1
            self._cond.notify_all()
            return self._latest

    def cancel(self) -> None:
        """Drop the pending request and stop the one being refined (between tiles): nothing new is
        wanted for now (the baked preview is on screen). The next submit starts afresh."""
        with self._cond:
            self._latest += 1
            if self._pending is not None:
                self._pending = None
                self.stats.dropped += 1
            self._cond.notify_all()

    def add_idle_task(self, task: Callable[[], None]) -> None:
        """Run `task` on the worker thread when no request is pending (thumbnails and the like)."""
        with self._cond:
            self._idle_tasks.append(task)
            self._cond.notify_all()

    def clear_idle_tasks(self) -> None:
        with self._cond:
            self._idle_tasks.clear()

    def poll(self) -> RenderResult | None:
        """The newest result not yet taken, or None."""
        with self._cond:
            r, self._result = self._result, None
            return r

    @property
    def latest_generation(self) -> int:
        return self._latest

    @property
    def busy(self) -> bool:
        """True while a request is pending or being rendered."""
        with self._cond:
            return self._busy or self._pending is not None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is pending or rendering (tests and scripted runs); False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._busy or self._pending is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._idle_tasks.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ worker side

    def _stale(self, req: RenderRequest) -> bool:
        return self._latest != req.generation or self._stop

    def _run(self) -> None:
        while True:
            task = None
            with self._cond:
                while self._pending is None and not self._idle_tasks and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                req, self._pending = self._pending, None
                if req is None:
                    task = self._idle_tasks.popleft()
                self._busy = req is not None
            try:
                if req is not None:
                    self._process(req)
                else:
                    task()
            except UserError as e:
                self.error = str(e)
            except Exception as e:  # a render bug must not kill the thread: show it in the window
                self.error = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def plan(self, req: RenderRequest) -> list[Quality]:
        """The qualities to render for a request, coarse to fine."""
        with self._cond:  # one consistent set of the GUI's settings (configure)
            progressive, adaptive_enabled, moving = self.progressive, self.adaptive_enabled, self.moving_samples
            target_s = self.adaptive.target_s
        full = full_quality(req.model, req.view)
        if full.neural_res is not None:  # EG3D: a lower neural resolution, the same output size
            preview = eg3d_preview(full, moving)
        elif adaptive_enabled:
            preview = self.adaptive.choose(full, moving)
        else:
            preview = Quality(full.resolution, max(MIN_COARSE, round(full.num_coarse * moving)),
                              round(full.num_fine * moving), "preview")
        if req.interactive:
            return [preview]
        if not progressive:
            return [full]
        view_key = (req.model.uid, req.latent, req.view)
        if self._shown == (view_key, "full"):
            return []  # already on screen at full quality
        predicted = self.adaptive.predict(full)
        quick = predicted is not None and predicted <= target_s
        if quick or req.baked or preview.cost >= full.cost or self._shown == (view_key, "preview"):
            return [full]
        return [preview, full]  # fast feedback first

    def _process(self, req: RenderRequest) -> None:
        self.error = None
        levels = self.plan(req)
        for rank, quality in enumerate(levels):
            if rank > 0 and self._stale(req):
                self.stats.cancelled += 1
                return
            is_preview = quality.level == "preview"
            result = self.render_fn(req, quality, (lambda: False) if is_preview else (lambda: self._stale(req)))
            if result is None:
                self.stats.cancelled += 1
                return
            self.stats.rendered += 1
            self.adaptive.observe(quality, result.render_s)
            self.render_times.append((time.monotonic(), result.render_s, quality.level))
            self._shown = ((req.model.uid, req.latent, req.view), quality.level)
            self._publish(result, rank)

    def _publish(self, result: RenderResult, rank: int) -> None:
        key = (result.generation, rank)
        with self._cond:
            if key <= self._published_key:
                return  # older than what is on screen
            self._published_key = key
            self._result = result
            self.stats.published += 1
