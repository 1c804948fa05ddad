"""Drives the viewer on a model with 3DGP's learned cameras and depth adaptor (imgui-bundle's test engine).

Run by test_viewer_3dgp_gui.py in a subprocess under Xvfb:

    python tests/viewer/gui_3dgp_driver.py OUT_DIR CKPT

Steps, each waiting on a condition: the first full frame (at the learned mean camera); the Camera
panel's "Sample a camera" and "Mean camera" buttons; the Render panel's "D depth" mode. Window
captures and the shown pictures go to OUT_DIR as PNG for a person to look at.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch
from imgui_bundle import imgui
from imgui_bundle.immapp import testing

from core.images import save_png
from tests.viewer.gui_harness import Harness
from viewer.app import AppOptions, ViewerApp
from viewer.export import picture
from viewer.state import ViewerState

RES = 64


def main(out_dir: Path, ckpt: str) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = ViewerState()
    state.model.spec = ckpt
    state.render.resolution = RES
    state.render.baked_preview = False
    app = ViewerApp(state, AppOptions(device=torch.device("cpu"), use_session=False, window_size=(1200, 800)))
    h = Harness(app, out_dir)
    results, wait, full_frame_of_current = h.results, h.wait, h.full_frame_of_current

    def frame(name: str) -> dict:
        r = app.result
        c = r.request.view.camera
        save_png(picture(r, app.state.render), out_dir / f"{name}.png")
        return {"level": r.quality.level, "mode": r.request.view.mode, "std": float(r.image.std()),
                "grey": bool((r.image[..., 0] == r.image[..., 1]).all()),
                "camera": [c.yaw, c.pitch, c.radius, c.fov_deg, list(c.look_at)]}

    def click(window: str, item: str, what: str) -> bool:
        before = app.state.camera.camera.key()
        ctx.window_focus(f"//{window}")
        ctx.yield_(2)
        ctx.item_click(f"//{window}/{item}")
        return wait(ctx, lambda: app.state.camera.camera.key() != before and full_frame_of_current(), what, 120)

    def scenario(c: imgui.test_engine.TestContext) -> None:
        nonlocal ctx
        ctx = c
        try:
            ok = wait(ctx, lambda: app.model is not None and full_frame_of_current(), "first frame", 180)
            results["open"] = {"ok": ok, "error": app.model_error, **frame("open")}
            results["sample"] = {"ok": click("Camera", "Sample a camera", "sample"), **frame("sample")}
            testing.capture(ctx, str(out_dir / "window_camera.png"))
            results["mean"] = {"ok": click("Camera", "Mean camera", "mean"), **frame("mean")}
            ctx.window_focus("//Render")
            ctx.yield_(2)
            ctx.item_click("//Render/D depth")
            ok = wait(ctx, lambda: app.state.render.mode == "ddepth" and full_frame_of_current()
                      and app.result.request.view.mode == "ddepth", "D depth", 120)
            results["ddepth"] = {"ok": ok, **frame("ddepth")}
            testing.capture(ctx, str(out_dir / "window_ddepth.png"))
            results["error"] = app.worker.error
        except Exception:
            results["exception"] = traceback.format_exc()

    ctx = None
    return h.run(scenario, slow_clicks=2.0, skip_without_gl=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
