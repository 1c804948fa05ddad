"""What the GUI drivers share: waiting on conditions, the "full frame of the current view" check,
work on the GUI thread, and running a scenario in the real window under the test engine.

The drivers (gui_driver.py, gui_mesh_driver.py, gui_driver_train.py) run in a subprocess under
Xvfb; each writes what happened to OUT_DIR/results.json for its pytest side.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Callable

from imgui_bundle import hello_imgui, imgui
from imgui_bundle.immapp import testing

from viewer.runner import addons, runner_params


class Harness:
    """One driver's run: its app, its results dict and the tasks queued for the GUI thread."""

    def __init__(self, app, out_dir: Path, default_timeout: float = 60.0, idle_s: float = 0.0):
        self.app, self.out_dir = app, out_dir
        self.results: dict = {}
        self.gl_tasks: list[Callable[[], None]] = []  # run on the GUI thread (it owns the GL context)
        self.default_timeout, self.idle_s = default_timeout, idle_s
        self.t0 = time.monotonic()

    def wait(self, ctx, cond: Callable[[], bool], what: str, timeout: float | None = None) -> bool:
        """Run frames until cond() holds (True; its time goes to results["t"]) or the timeout
        passes (False; `what` goes to results["timeouts"]). idle_s: a pause between frames, which
        leaves the CPU to a background process the scenario waits on. Raises once the test engine
        has logged an error (a failed hover or click): it then ignores every later action, and the
        scenario would only run into one timeout after another."""
        end = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        try:
            while time.monotonic() < end:
                if ctx.is_error():  # the engine refuses every later action: end now and say where
                    self.results["engine_error"] = f"the test engine logged an error before '{what}' (see stdout)"
                    raise RuntimeError(self.results["engine_error"])
                if cond():
                    self.results.setdefault("t", {})[what] = round(time.monotonic() - self.t0, 2)
                    return True
                ctx.yield_()
                if self.idle_s:
                    time.sleep(self.idle_s)
            self.results.setdefault("timeouts", []).append(what)
            return False
        finally:
            self.save(partial=True)  # a run killed later still leaves how far it got

    def save(self, partial: bool = False) -> None:
        """Write results.json (atomically: a reader never sees half a file)."""
        data = {**self.results, "partial": partial, "seconds": time.monotonic() - self.t0}
        tmp = self.out_dir / "results.json.tmp"
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.out_dir / "results.json")

    def full_frame_of_current(self) -> bool:
        """The shown frame is a full-quality one of the current latent and view, and none is pending."""
        app = self.app
        r, req = app.result, app.current_request()
        return (r is not None and req is not None and not app.worker.busy and r.quality.level == "full"
                and (r.request.latent, r.request.view) == (req.latent, req.view))

    def on_gui_thread(self, ctx, fn: Callable[[], object], what: str):
        """fn() run at the end of a frame on the GUI thread; its value (its exception re-raised)."""
        box: dict = {}

        def task() -> None:
            try:
                box["value"] = fn()
            except Exception:
                box["error"] = traceback.format_exc()
        self.gl_tasks.append(task)
        self.wait(ctx, lambda: bool(box), what, 30)
        if "error" in box:
            raise RuntimeError(box["error"])
        return box.get("value")

    def run(self, scenario: Callable[[object], None], watchdog: tuple[float, float] = (120.0, 240.0),
            slow_clicks: float = 0.0, cleanup: Callable[[], None] | None = None, skip_without_gl: bool = False) -> int:
        """Open the window, run scenario(ctx) in the test engine, write results.json.

        slow_clicks > 0: Dear ImGui's double-click time in seconds (a loaded CPU draws a frame in
        0.2-0.5 s, so a simulated double-click's two clicks can be further apart than its 0.3 s).
        skip_without_gl: when the app found no usable OpenGL 3.3 context, the results are only
        {"skip": why} (the driver's tests then skip, saying why).
        """
        def configure_engine() -> None:
            io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
            io.config_watchdog_warning, io.config_watchdog_kill_test = watchdog

        def scenario_with_io(ctx) -> None:
            if slow_clicks:  # set from inside the test: the frame loop's own io is live by then
                gio = imgui.get_io()
                if hasattr(gio, "mouse_single_click_delay"):  # ImGui asserts it exceeds the double-click time
                    gio.mouse_single_click_delay = max(gio.mouse_single_click_delay, slow_clicks + 0.5)
                gio.mouse_double_click_time = slow_clicks
            scenario(ctx)

        def frame_end() -> None:
            while self.gl_tasks:
                self.gl_tasks.pop(0)()
            self.app.frame_end()

        rp = runner_params(self.app)
        rp.callbacks.register_tests = configure_engine
        rp.callbacks.post_render_dockable_windows = frame_end
        try:
            testing.run(test_function=scenario_with_io, runner_params=rp, add_ons_params=addons(),
                        run_speed=testing.TestRunSpeed.fast)
        except Exception:
            self.results["run_error"] = traceback.format_exc()
        finally:
            if cleanup is not None:
                cleanup()
        if skip_without_gl and self.app.gl_error:
            self.results.clear()
            self.results["skip"] = self.app.gl_error
        self.save()
        return 0
