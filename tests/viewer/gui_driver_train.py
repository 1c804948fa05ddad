"""Drives the training panel of the real viewer window with imgui-bundle's test engine.

Run by test_viewer_train.py in a subprocess under Xvfb:

    python tests/viewer/gui_driver_train.py OUT_DIR [SCREENSHOT.png [TICKS]]

(SCREENSHOT: the window while the run goes, after TICKS ticks (default 3); docs/viewer-training-panel.png
is made this way with TICKS 40.)

Like a user: make the synthetic set with the panel's button, press Start (a tiny config typed in
"More overrides"), watch stats arrive and a snapshot load into the view with the camera kept, press
Stop. Every step waits on a condition (never a fixed number of frames). What happened goes to
OUT_DIR/results.json for the pytest side to check against the run folder itself. A "Mesh" panel is
registered in PANELS first when the branch has none, to check the dock layout has room for it.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch
from imgui_bundle import imgui
from imgui_bundle.immapp import testing

from tests.tiny_train import TINY_TRAIN_OVERRIDES
from tests.viewer.gui_harness import Harness
from viewer import panels
from viewer import train_form as tf
from viewer.app import AppOptions, ViewerApp
from viewer.state import ViewerState

TINY_OVERRIDES = "\n".join(TINY_TRAIN_OVERRIDES)
KEPT_YAW = 0.9


def _tab_strips(names: list[str]) -> dict:
    """For each docked panel: its dock node's tab strip (ideal width of all tabs vs the strip's width)."""
    out = {}
    for name in names:
        w = imgui.internal.find_window_by_name(name)
        node = w.dock_node if w is not None else None
        bar = node.tab_bar if node is not None else None
        if bar is None:
            out[name] = None
            continue
        tabs = bar.tabs
        out[name] = {"node": int(node.id_), "tabs": int(tabs.size()) if hasattr(tabs, "size") else len(tabs),
                     "ideal": float(bar.width_all_tabs_ideal), "bar": float(bar.bar_rect.max.x - bar.bar_rect.min.x),
                     "scroll_buttons": bool(bar.scroll_button_enabled)}
    return out


def main(out_dir: Path, screenshot: Path | None, ticks: int = 3) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    if not any(name == "Mesh" for name, _, _ in panels.PANELS):
        panels.PANELS.insert(4, ("Mesh", panels.VIEW_SPACE, lambda app: imgui.text("a stand-in Mesh panel")))
    state = ViewerState()
    state.model.spec = "random:demo"
    state.render.resolution = 64
    state.render.coarse_mult = state.render.fine_mult = 0.25
    t = state.train
    t.data, t.outdir = str(out_dir / "synth.zip"), "runs/not-this-one"
    t.synth_objects, t.synth_views, t.synth_res = 3, 4, 32
    t.values = {**tf.preset_values("demo"), "train.kimg": 1000.0, "train.batch": 4}
    t.overrides, t.device, t.auto_load, t.stop_timeout_s = TINY_OVERRIDES, "cpu", True, 120.0
    app = ViewerApp(state, AppOptions(device=torch.device("cpu"), use_session=False, window_size=(1280, 800)))
    h = Harness(app, out_dir, default_timeout=90.0, idle_s=0.1)  # idle: leave the CPU to the run
    results, wait, full_frame_of_current = h.results, h.wait, h.full_frame_of_current

    def scenario(ctx: imgui.test_engine.TestContext) -> None:
        try:
            ok = wait(ctx, lambda: app.model is not None and full_frame_of_current(), "random:demo frame")
            results["start_model"] = {"ok": ok}
            results["tabs"] = _tab_strips([name for name, _, _ in panels.PANELS])
            # 1. the synthetic set from the panel's button (made in the background while the picker is used)
            ctx.window_focus("//Training")
            ctx.yield_(2)
            ctx.item_click("//Training/Make synthetic")
            # meanwhile the folder picker sets the output folder; then a folder typed in the field
            ctx.item_click("//Training/...##outdir")
            picker = app.training.picker
            opened = wait(ctx, lambda: picker.visible, "picker opens", 10)
            ctx.item_input_value("//Choose a path/##pick_path", str(out_dir))
            wait(ctx, lambda: picker.folder == str(out_dir), "picker navigates", 10)
            ctx.item_click("//Choose a path/Choose folder")
            picked = wait(ctx, lambda: not picker.visible, "picker closes", 10) and app.state.train.outdir
            ctx.item_input_value("//Training/##outdir", str(out_dir / "run"))
            results["picker"] = {"opened": opened, "picked": picked, "typed": app.state.train.outdir}
            ok = wait(ctx, lambda: app.training is not None and app.training.tool is None
                      and Path(app.state.train.data).exists(), "synthetic set")
            results["dataset"] = {"ok": ok, "path": app.state.train.data, "message": app.training.message}
            # 2. turn the camera away from the mean: the auto-loaded snapshot must keep it
            cam = app.state.camera.camera.copy()
            cam.yaw = KEPT_YAW
            app.state.camera.camera = cam
            app.camera_changed()
            # 3. Start: stats arrive and are plotted, a snapshot is auto-loaded
            ctx.item_click("//Training/Start")
            u = app.training
            ok = wait(ctx, lambda: u.job is not None and u.job.status == "running", "job running", 10)
            results["started"] = {"ok": ok, "cmd": u.job.info.cmd if u.job and u.job.info else None,
                                  "message": u.message}
            run_dir = str(Path(app.state.train.outdir))

            def snapshot_shown() -> bool:
                m = app.model
                return (m is not None and m.spec.startswith(run_dir) and u.loaded is not None
                        and m.spec == str(u.loaded) and full_frame_of_current() and len(u.job.tail.records) >= ticks)

            ok = wait(ctx, snapshot_shown, "stats and an auto-loaded snapshot", 120 + 3 * ticks)
            tail = u.job.tail
            results["live"] = {"ok": ok, "status": u.job.status, "records": len(tail.records),
                               "series": {k: len(s.xs) for k, s in tail.series.items()},
                               "model_spec": app.model.spec if app.model else None,
                               "z_dim": app.model.cfg.generator.z_dim if app.model else None,
                               "yaw": app.state.camera.camera.yaw, "shown_yaw": app.result.request.view.camera.yaw,
                               "loads": u.loads, "progress": u.job.progress().fraction if u.job.progress() else None,
                               "total_kimg": u.job.total_kimg, "log": u.job.log_tail(1500)}
            ctx.yield_(3)
            testing.capture(ctx, str(screenshot or out_dir / "running.png"))
            # 4. Stop: SIGTERM, snapshot, exit 0
            ctx.item_click("//Training/Stop")
            ok = wait(ctx, lambda: u.job.status in ("stopped", "failed"), "run stopped", 150)
            results["stopped"] = {"ok": ok, "status": u.job.status, "message": u.job.message,
                                  "returncode": u.job.proc.returncode if u.job.proc else None,
                                  "pid": u.job.info.pid, "snapshot": str(u.job.snapshot),
                                  "records": len(u.job.tail.records), "log": u.job.log_tail(1500)}
            wait(ctx, lambda: app.loader.loading is None and full_frame_of_current(), "last frame", 60)
            ctx.yield_(3)
            testing.capture(ctx, str(out_dir / "stopped.png"))
        except Exception:
            results["exception"] = traceback.format_exc()

    def stop_run() -> None:  # never leave a run behind a failed test
        if app.training is not None and app.training.job is not None and app.training.job.running:
            from viewer import run_processes

            run_processes.kill_tree(app.training.job.info)

    return h.run(scenario, watchdog=(200.0, 400.0), cleanup=stop_run)

if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else None,
                  int(sys.argv[3]) if len(sys.argv) > 3 else 3))
