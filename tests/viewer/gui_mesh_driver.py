"""Drives the viewer's Mesh panel with imgui-bundle's test engine and records what happened.

Run by test_viewer_mesh_gui.py in a subprocess under Xvfb:

    python tests/viewer/gui_mesh_driver.py OUT_DIR [SCREENSHOT_PNG [MODEL]]

MODEL (default random:demo) is any --ckpt spec; the README's Mesh panel picture uses `demo`.

Steps (each waits on a condition, never on a fixed number of frames): open random:demo, pick a
small grid in the Mesh panel, wait for the live preview, toggle the viewport to the mesh with G,
Extract (progress, result), read back the mesh pass and the volume picture at the render size,
Save .ply, start a large extraction and Cancel it. Results go to OUT_DIR/results.json.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from imgui_bundle import imgui
from imgui_bundle.immapp import testing

from tests.viewer.gui_harness import Harness
from viewer.app import AppOptions, ViewerApp
from viewer.export import picture
from viewer.state import ViewerState

RES = 48  # extraction grid
READ = 96  # read-back size of the viewport passes
LAYOUT_ITEMS = ("//Mesh/resolution", "//Mesh/live preview (64^3, re-extracted when the level or box changes)",
                "//Mesh/Extract", "//Mesh/Save .ply")


def main(out_dir: Path, screenshot: Path | None, model: str = "random:demo") -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = ViewerState()
    state.model.spec = model
    state.render.resolution = READ
    state.render.coarse_mult = state.render.fine_mult = 0.5
    state.export.out_dir = str(out_dir / "exports")
    app = ViewerApp(state, AppOptions(device=torch.device("cpu"), use_session=False, window_size=(1280, 820)))
    h = Harness(app, out_dir)
    results, wait, full_frame_of_current, on_gui_thread = h.results, h.wait, h.full_frame_of_current, h.on_gui_thread

    def wait_item(ctx, ref: str, timeout: float = 30.0) -> bool:
        """Yield frames until `ref` is on screen (a failed lookup would end the whole test)."""
        return wait(ctx, lambda: ctx.item_exists(ref), f"item {ref}", timeout)

    def positions(ctx, when: str) -> None:
        """Where the panel's controls are now (results["layout"][when]): the status that comes and
        goes while one works must not move them under the mouse."""
        got = {}
        for ref in LAYOUT_ITEMS:
            wait_item(ctx, ref)
            info = ctx.item_info(ref)
            w, r = info.window, info.rect_full  # in the panel's content: a scroll is no layout change
            got[ref] = [round(r.min.x - w.pos.x + w.scroll.x, 1), round(r.min.y - w.pos.y + w.scroll.y, 1)]
        results.setdefault("layout", {})[when] = got

    def scenario(ctx: imgui.test_engine.TestContext) -> None:
        try:
            t0 = time.monotonic()
            ok = wait(ctx, lambda: app.model is not None and full_frame_of_current(), f"{model} frame", 90)
            results["demo"] = {"ok": ok}
            ctx.window_focus("//Mesh")
            ctx.yield_(2)
            positions(ctx, "start")
            for _ in range(3):  # typing into a slider can be lost while a busy frame is drawn: retry
                wait_item(ctx, "//Mesh/resolution")
                ctx.item_input_value("//Mesh/resolution", RES)
                end = time.monotonic() + 5
                while app.state.mesh.resolution != RES and time.monotonic() < end:
                    ctx.yield_()
                if app.state.mesh.resolution == RES:
                    break
            results["resolution"] = app.state.mesh.resolution
            ok = wait(ctx, lambda: app.mesh.preview.mesh is not None and not app.mesh.preview.busy, "preview mesh")
            results["preview"] = {"ok": ok, "faces": len(app.mesh.preview.mesh.faces) if ok else 0,
                                  "auto": app.mesh.preview.auto_describe, "kind": app.mesh.preview.cache.grid.kind}
            positions(ctx, "preview")
            # the volume picture at the render size, then G: the mesh with the same camera
            volume = picture(app.result, app.state.render)
            np.save(out_dir / "volume.npy", volume)
            ctx.mouse_move("//Viewport/##viewport")
            ctx.key_press(imgui.Key.g)
            ok = wait(ctx, lambda: app.state.mesh.show_mesh, "G toggles the mesh view", 10)
            ctx.yield_(3)
            preview_px = on_gui_thread(ctx, lambda: (app.mesh.texture(READ), app.mesh.pass_.read_pixels())[1],
                                       "preview read-back")
            np.save(out_dir / "preview_pixels.npy", preview_px)
            results["toggle"] = {"ok": ok, "background": list(app.mesh.background())}
            # Extract in the background
            wait_item(ctx, "//Mesh/Extract")
            ctx.item_click("//Mesh/Extract")
            ok = wait(ctx, lambda: app.mesh.job is None and app.mesh.result is not None, "extraction", 90)
            r = app.mesh.result
            results["extract"] = {"ok": ok, "message": app.mesh.message,
                                  "faces": len(r.mesh.faces) if r else 0, "level": r.level if r else None,
                                  "res": r.params.resolution if r else None,
                                  "shown_is_result": app.mesh.shown_mesh() is (r.mesh if r else None)}
            positions(ctx, "extracted")
            ctx.yield_(3)
            mesh_px = on_gui_thread(ctx, lambda: (app.mesh.texture(READ), app.mesh.pass_.read_pixels())[1],
                                    "mesh read-back")
            np.save(out_dir / "mesh_pixels.npy", mesh_px)
            cam = app.state.camera.camera
            results["camera"] = [cam.yaw, cam.pitch, cam.radius, cam.fov_deg, list(cam.look_at)]
            # colours mode draws the field's colours
            wait_item(ctx, "//Mesh/vertex colours")
            ctx.item_click("//Mesh/vertex colours")
            wait(ctx, lambda: app.state.mesh.shading == "colors", "vertex colour mode", 10)
            ctx.yield_(3)
            color_px = on_gui_thread(ctx, lambda: (app.mesh.texture(READ), app.mesh.pass_.read_pixels())[1],
                                     "colour read-back")
            np.save(out_dir / "color_pixels.npy", color_px)
            # export .ply
            wait_item(ctx, "//Mesh/Save .ply")
            ctx.item_click("//Mesh/Save .ply")
            ok = wait(ctx, lambda: (app.mesh.export_message or "").startswith("saved"), "save .ply", 20)
            results["export"] = {"ok": ok, "message": app.mesh.export_message}
            positions(ctx, "saved")
            if screenshot is not None:
                wait_item(ctx, "//Mesh/shaded")
                ctx.item_click("//Mesh/shaded")
                ctx.yield_(5)
                testing.capture(ctx, str(screenshot))
            # cancel a large extraction
            app.state.mesh.resolution = 512
            wait_item(ctx, "//Mesh/Extract")
            ctx.item_click("//Mesh/Extract")
            ok = wait(ctx, lambda: app.mesh.job is not None and app.mesh.job.progress > 0, "large job progresses", 60)
            wait_item(ctx, "//Mesh/Cancel")
            ctx.item_click("//Mesh/Cancel")
            ok2 = wait(ctx, lambda: app.mesh.job is None, "cancel", 60)
            results["cancel"] = {"ok": ok and ok2, "message": app.mesh.message,
                                 "result_res": app.mesh.result.params.resolution if app.mesh.result else None}
            # the density surface: the preview follows with a density grid of its own
            wait_item(ctx, "//Mesh/density")
            ctx.item_click("//Mesh/density")
            pv = app.mesh.preview
            ok = wait(ctx, lambda: app.state.mesh.surface == "density" and pv.auto_surface == "density"
                      and not pv.busy and pv.mesh is not None, "density preview", 60)
            results["density"] = {"ok": ok, "kind": pv.cache.grid.kind, "faces": len(pv.mesh.faces) if ok else 0}
            ctx.key_press(imgui.Key.g)
            ok = wait(ctx, lambda: not app.state.mesh.show_mesh, "G back to the volume", 10)
            results["toggle_back"] = ok
            results["scenario_s"] = time.monotonic() - t0
        except Exception:
            results["exception"] = traceback.format_exc()

    return h.run(scenario, slow_clicks=3.0)

if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None, *sys.argv[3:4]))
