"""Drives the real viewer window with imgui-bundle's test engine and records what happened.

Run by test_viewer_gui.py in a subprocess under Xvfb (a crash there cannot take pytest down):

    python tests/viewer/gui_driver.py OUT_DIR TINY_CKPT [CONDITIONAL_TINY_CKPT]

The test function clicks, drags and types like a user; everything checkable is written to
OUT_DIR/results.json (plus the exported screenshot and the blended w as .npy) for the pytest side
to compare against independent oracles (core's G.render, the lerp formula).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import numpy as np
import torch
from imgui_bundle import imgui
from imgui_bundle.immapp import testing

from tests.viewer.gui_harness import Harness
from viewer import colormaps
from viewer.app import AppOptions, ViewerApp
from viewer.export import picture, scalar_view
from viewer.state import ViewerState


def main(out_dir: Path, tiny_ckpt: str, cond_ckpt: str | None = None) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = ViewerState()
    state.model.spec = "random:demo"
    state.render.resolution = 64
    state.render.coarse_mult = state.render.fine_mult = 0.25
    state.export.out_dir = str(out_dir / "exports")
    state.export.resolution = 64
    app = ViewerApp(state, AppOptions(device=torch.device("cpu"), use_session=False, window_size=(1200, 800)))
    h = Harness(app, out_dir)
    results, wait, full_frame_of_current, gl_tasks = h.results, h.wait, h.full_frame_of_current, h.gl_tasks

    def scenario(ctx: imgui.test_engine.TestContext) -> None:
        try:
            # 1. random:demo opens and shows a full-quality frame
            ok = wait(ctx, lambda: app.model is not None and full_frame_of_current(), "random:demo frame")
            results["demo"] = {"ok": ok, "spec": app.model.spec if app.model else None,
                               "frames": app.worker.stats.published, "drop_enabled": app.drop_enabled}
            # 2. open the tiny checkpoint file through the model panel
            ok = _open_by_path(ctx, tiny_ckpt, "tiny checkpoint frame")
            results["file"] = {"ok": ok, "spec": app.model.spec, "error": app.model_error,
                               "z_dim": app.model.cfg.generator.z_dim}
            _file_dialog_steps(ctx)
            # 3. drag on the image: the camera turns and a new frame arrives
            cam0 = app.state.camera.camera.copy()
            gen0 = app.result.generation
            ctx.item_drag_with_delta("//Viewport/##viewport", imgui.ImVec2(120, 40))
            ok = wait(ctx, lambda: full_frame_of_current() and app.result.generation > gen0, "frame after drag")
            cam1 = app.state.camera.camera
            results["drag"] = {"ok": ok, "yaw0": cam0.yaw, "pitch0": cam0.pitch, "yaw1": cam1.yaw,
                               "pitch1": cam1.pitch, "gen0": gen0, "gen1": app.result.generation,
                               "shown_yaw": app.result.request.view.camera.yaw}
            # 3b. the mouse wheel over the image zooms in
            r0 = app.state.camera.camera.radius
            ctx.mouse_move("//Viewport/##viewport")
            ctx.mouse_wheel_y(2.0)
            ok = wait(ctx, lambda: full_frame_of_current() and app.result.request.view.camera.radius < r0, "zoom")
            results["zoom"] = {"ok": ok, "r0": r0, "r1": app.state.camera.camera.radius}
            # 4. the interpolation slider: keyframes seeds 2 and 5, position 0.3
            ctx.window_focus("//Latent")
            ctx.yield_(2)
            ctx.item_input_value("//Latent/**/key 1", 2)
            ctx.item_input_value("//Latent/**/key 2", 5)
            ctx.item_input_value("//Latent/position", 0.3)
            ok = wait(ctx, lambda: full_frame_of_current() and abs(app.result.request.latent.t - 0.3) < 1e-6,
                      "interp frame")
            spec = app.result.request.latent
            np.save(out_dir / "w_interp.npy", app.result.w.numpy())
            results["interp"] = {"ok": ok, "interp": app.state.latent.interp, "t": spec.t, "mode": spec.mode,
                                 "seeds": [k.seed for k in spec.keyframes], "psi": spec.psi}
            # 5. screenshot from the export panel
            ctx.window_focus("//Export")
            ctx.yield_(2)
            ctx.item_click("//Export/Save screenshot (Ctrl+S)")
            ok = wait(ctx, lambda: app.messages.get("export", "").startswith("saved"), "screenshot")
            cam = app.state.camera.camera
            v = app.view_spec()
            results["screenshot"] = {"ok": ok, "message": app.messages.get("export"),
                                     "camera": [cam.yaw, cam.pitch, cam.radius, cam.fov_deg, list(cam.look_at)],
                                     "resolution": v.resolution, "num_coarse": app.result.quality.num_coarse,
                                     "num_fine": app.result.quality.num_fine,
                                     "quality_resolution": app.result.quality.resolution,
                                     "latent": {"seeds": [k.seed for k in app.result.request.latent.keyframes],
                                                "t": app.result.request.latent.t}}
            # 5b. a 4-frame orbit video from the export panel, in the background
            ctx.item_input_value("//Export/frames", 4)
            ctx.item_click("//Export/Start video export")
            ok = wait(ctx, lambda: app.export_job is not None and app.export_job.finished, "video export")
            job = app.export_job
            results["video"] = {"ok": ok, "error": job.error if job else None, "frames": job.done_frames if job else 0,
                                "outputs": [str(p) for p in job.outputs] if job else []}
            # 6. depth through the display shader equals the CPU colour map (viewer/colormaps.py)
            ctx.window_focus("//Render")
            ctx.yield_(2)
            ctx.item_click("//Render/Depth")
            ok = wait(ctx, lambda: app.state.render.mode == "depth" and full_frame_of_current(), "depth frame")
            gl_check: dict = {}

            def readback() -> None:
                r = app.result
                values, rng, cmap, rev = scalar_view(r, app.state.render)
                app.source_tex.upload(values)
                app.display.set_lut(cmap, colormaps.lut(cmap))
                app.display.draw(app.source_tex, r.quality.resolution, rng, rev)  # native size: exact texels
                got, expected = app.display.read_pixels().astype(int), picture(r, app.state.render).astype(int)
                d = np.abs(got - expected)
                gl_check.update(ok=ok, shape=list(got.shape), max=int(d.max()), frac_off=float((d > 3).mean()),
                                std=float(expected.std()), renders=app.worker.stats.rendered)
                app._display_key = None  # let the viewport redraw at its own size

            gl_tasks.append(readback)
            wait(ctx, lambda: bool(gl_check), "GL readback")
            results["depth_display"] = gl_check
            testing.capture(ctx, str(out_dir / "window.png"))
            results["stats"] = vars(app.worker.stats)
            if cond_ckpt:
                _class_keyframe_steps(ctx)
        except Exception:
            results["exception"] = traceback.format_exc()

    def _open_by_path(ctx: imgui.test_engine.TestContext, path: str, what: str) -> bool:
        """Type a checkpoint path into the model panel, press Open, wait for its full frame."""
        ctx.window_focus("//Model")
        ctx.yield_(2)
        ctx.item_input_value("//Model/##open_path", path)
        ctx.item_click("//Model/Open")
        return wait(ctx, lambda: app.model is not None and app.model.spec == path and full_frame_of_current(), what)

    def _class_keyframe_steps(ctx: imgui.test_engine.TestContext) -> None:
        """7. a class-conditional checkpoint: each keyframe its own class (the keyframes are still
        seeds 2 and 5 from step 4), halfway between them."""
        ok = _open_by_path(ctx, cond_ckpt, "conditional checkpoint frame")
        ctx.window_focus("//Latent")
        ctx.yield_(2)
        ctx.item_input_value("//Latent/**/##class0", 2)
        ctx.item_input_value("//Latent/**/##class1", 0)
        ctx.item_input_value("//Latent/position", 0.5)
        ok = ok and wait(ctx, lambda: full_frame_of_current()
                         and [k.class_idx for k in app.result.request.latent.keyframes] == [2, 0]
                         and abs(app.result.request.latent.t - 0.5) < 1e-6, "class keyframes frame")
        spec = app.result.request.latent
        np.save(out_dir / "w_classes.npy", app.result.w.numpy())
        testing.capture(ctx, str(out_dir / "window_classes.png"))
        results["classes"] = {"ok": ok, "seeds": [k.seed for k in spec.keyframes], "t": spec.t, "mode": spec.mode,
                              "classes": [k.class_idx for k in spec.keyframes], "psi": spec.psi}

    def _file_dialog_steps(ctx: imgui.test_engine.TestContext) -> None:
        """2b. the "Open checkpoint" dialog: Ctrl+O, enter a run folder, Up, open it; Browse..., a
        typed path, a broken file (its error stays in the dialog), double-click the tiny checkpoint."""
        dlg, folder = app.file_dialog, str(Path(tiny_ckpt).parent)
        run_dir = str(Path(folder) / "run")
        r: dict = {}
        ctx.key_press(imgui.Key.mod_ctrl | imgui.Key.o)
        r["opened"] = wait(ctx, lambda: dlg.visible, "dialog opens (Ctrl+O)", 10)
        r["start"], r["names"] = dlg.folder, [e.name + "/" * e.is_dir for e in dlg.entries]
        ctx.item_double_click("//Open checkpoint/**/run")
        r["entered"] = wait(ctx, lambda: dlg.folder == run_dir, "enter the run folder", 10)
        r["run_names"] = [e.name for e in dlg.entries]
        ctx.item_click("//Open checkpoint/Up")
        r["up"] = wait(ctx, lambda: dlg.folder == folder and any(e.name == "run" for e in dlg.entries), "Up", 10)
        ctx.yield_(3)  # the re-listed rows must have been drawn before the engine can find one
        ctx.item_click("//Open checkpoint/**/run")
        ctx.yield_(2)
        testing.capture(ctx, str(out_dir / "file_dialog.png"))
        ctx.item_click("//Open checkpoint/Open run folder")
        r["run_opened"] = wait(ctx, lambda: not dlg.visible and app.model is not None and app.model.spec == run_dir,
                               "open the run folder", 30)
        r["run_spec"], r["run_source"] = app.model.spec, app.model.info.get("source")
        ctx.window_focus("//Model")
        ctx.yield_(2)
        ctx.item_click("//Model/Browse...")
        wait(ctx, lambda: dlg.visible, "dialog opens (Browse...)", 10)
        r["start2"] = dlg.folder
        ctx.item_input_value("//Open checkpoint/##browse_path", folder)
        r["typed"] = wait(ctx, lambda: dlg.folder == folder, "typed folder", 10)
        ctx.item_click("//Open checkpoint/**/broken.pt")
        ctx.item_click("//Open checkpoint/Open")
        r["broken_error"] = wait(ctx, lambda: dlg.load_error is not None, "broken file error", 30) and dlg.load_error
        r["open_after_error"] = dlg.visible
        ctx.item_double_click("//Open checkpoint/**/tiny.pt")
        r["ok"] = wait(ctx, lambda: not dlg.visible and app.model is not None and app.model.spec == tiny_ckpt
                       and full_frame_of_current(), "tiny checkpoint from the dialog", 30)
        r["spec"], r["browse_dir"] = app.model.spec, app.state.model.browse_dir
        results["dialog"] = r

    return h.run(scenario, slow_clicks=2.0)  # slow clicks: a loaded CPU draws frames slowly

if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], *sys.argv[3:4]))
