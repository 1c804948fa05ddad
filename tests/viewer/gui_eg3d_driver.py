"""Drives the viewer on an EG3D model with imgui-bundle's test engine and records what happened.

Run by test_viewer_eg3d_gui.py in a subprocess under Xvfb:

    python tests/viewer/gui_eg3d_driver.py OUT_DIR CKPT

Steps, each waiting on a condition: the EG3D snapshot's first full frame; the Render panel's "raw
neural image" toggle (the viewport texture read back at the neural resolution); the shortcut 5
turns it off; a drag with the default conditioning pose (w unchanged), then "follow the render
camera" in the Latent panel and a drag (w changes). Window captures and the shown pictures go to
OUT_DIR as PNG for a person to look at.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import numpy as np
import torch
from imgui_bundle import imgui
from imgui_bundle.immapp import testing

from core.images import save_png
from tests.viewer.gui_harness import Harness
from viewer.app import AppOptions, ViewerApp
from viewer.export import picture
from viewer.state import ViewerState

RES = 128
RAW_TOGGLE = "//Render/raw neural image (5)"


def main(out_dir: Path, ckpt: str) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = ViewerState()
    state.model.spec = ckpt
    state.render.resolution = RES
    app = ViewerApp(state, AppOptions(device=torch.device("cpu"), use_session=False, window_size=(1200, 800)))
    h = Harness(app, out_dir)
    results, wait, full_frame_of_current, on_gui_thread = h.results, h.wait, h.full_frame_of_current, h.on_gui_thread

    def frame(name: str) -> dict:
        r = app.result
        q, c = r.quality, r.request.view.camera
        save_png(picture(r, app.state.render), out_dir / f"{name}.png")
        return {"level": q.level, "resolution": q.resolution, "neural_res": q.neural_res, "image": list(r.image.shape),
                "raw": list(r.raw.shape) if r.raw is not None else None, "depth": list(r.depth.shape),
                "std": float(r.image.std()), "w": r.w.numpy().tolist()[0][:8], "yaw": r.request.view.camera.yaw,
                "camera": [c.yaw, c.pitch, c.radius, c.fov_deg, list(c.look_at)], "pose": r.request.latent.pose,
                "renders": app.worker.stats.rendered}

    def drag(ctx, what: str) -> bool:
        gen = app.result.generation
        ctx.item_drag_with_delta("//Viewport/##viewport", imgui.ImVec2(60, 0))
        return wait(ctx, lambda: full_frame_of_current() and app.result.generation > gen, what, 120)

    def scenario(ctx: imgui.test_engine.TestContext) -> None:
        try:
            ok = wait(ctx, lambda: app.model is not None and full_frame_of_current(), "EG3D frame", 180)
            results["open"] = {"ok": ok, "eg3d": app.model.eg3d, "error": app.model_error,
                               "neural_res": app.model.cfg.generator.neural_res, **frame("final")}
            testing.capture(ctx, str(out_dir / "window_final.png"))
            # the raw neural image: the toggle, then the viewport's texture read back at its size
            ctx.window_focus("//Render")
            ctx.yield_(2)
            ctx.item_click(RAW_TOGGLE)
            ok = wait(ctx, lambda: app.state.render.raw_image and app._display_key is not None
                      and app._display_key[-1], "raw toggle", 30)
            nr = app.result.raw.shape[0]

            def readback():
                app._display_key = None
                app.display_texture(nr)  # what the viewport shows, drawn at the raw image's own size
                got = app.display.read_pixels()
                app._display_key = None  # let the viewport redraw at its own size
                return np.abs(got.astype(int) - app.result.raw.astype(int)).max()

            diff = on_gui_thread(ctx, readback, "raw readback")
            ctx.mouse_move("//Viewport/##viewport")  # no tooltip over the Render panel in the capture
            ctx.yield_(3)
            results["raw"] = {"ok": ok, "readback_max_diff": int(diff), "renders": app.worker.stats.rendered,
                              **frame("raw")}
            testing.capture(ctx, str(out_dir / "window_raw.png"))
            ctx.key_press(imgui.Key._5)
            results["raw_off"] = wait(ctx, lambda: not app.state.render.raw_image, "key 5", 10)
            # conditioning pose: the default (mean) ignores the render camera, "follow" does not
            w0 = app.result.w.clone()
            ok = drag(ctx, "drag (mean pose)")
            results["drag_mean"] = {"ok": ok, "same_w": bool(torch.equal(app.result.w, w0)), **frame("drag_mean")}
            ctx.window_focus("//Latent")
            ctx.yield_(2)
            ctx.set_ref("//Latent")
            ctx.combo_click("conditioning pose/follow the render camera")
            ctx.set_ref("")
            wait(ctx, lambda: app.state.latent.pose_mode == "camera" and full_frame_of_current(), "follow", 60)
            w1 = app.result.w.clone()
            ok = drag(ctx, "drag (follow)")
            results["drag_follow"] = {"ok": ok, "w_change": float((app.result.w - w1).abs().max()),
                                      "w_change_from_mean": float((w1 - w0).abs().max()), **frame("drag_follow")}
            ctx.window_focus("//Model")
            testing.capture(ctx, str(out_dir / "window_model.png"))
            results["bakes"] = vars(app.bakes.stats)
            results["worker"] = vars(app.worker.stats)
            results["error"] = app.worker.error
        except Exception:
            results["exception"] = traceback.format_exc()

    return h.run(scenario, slow_clicks=2.0, skip_without_gl=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
