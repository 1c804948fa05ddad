"""Drives the viewer's baked GL preview with imgui-bundle's test engine and records what happened.

Run by test_baked_preview_gui.py in a subprocess under Xvfb:

    python tests/viewer/gui_baked_driver.py OUT_DIR [MODEL]

MODEL (default `demo`, the bundled checkpoint) is any --ckpt spec. Steps, each waiting on a
condition: the first full frame, then the bake (on the render worker); the preview of the shown
view read back at the render's size (the pytest side compares it with G.render); auto-orbit
(the preview on screen at the viewport's size, no neural requests meanwhile), then still again
(the neural full frame replaces it); a drag on the image; the Render panel's toggle off (neural
previews while moving) and on again. Every GUI frame logs whether the preview was on screen.
PNGs of the window and of both pictures go to OUT_DIR for a person to look at.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from imgui_bundle import imgui
from imgui_bundle.immapp import testing

from tests.viewer.gui_harness import Harness
from viewer.app import AppOptions, ViewerApp
from viewer.state import ViewerState

RES = 96  # the neural render's full-quality resolution
TOGGLE = "//Render/baked preview while moving"


def main(out_dir: Path, model: str = "demo") -> int:
    from core.images import save_png

    out_dir.mkdir(parents=True, exist_ok=True)
    state = ViewerState()
    state.model.spec = model
    state.render.resolution = RES
    app = ViewerApp(state, AppOptions(device=torch.device("cpu"), use_session=False, window_size=(1200, 800)))
    h = Harness(app, out_dir)
    results, wait, full_frame_of_current, on_gui_thread = h.results, h.wait, h.full_frame_of_current, h.on_gui_thread
    frames: list[tuple[bool, bool, int]] = []  # per GUI frame: (preview on screen, moving, requests submitted)
    frame_end = app.frame_end

    def logged_frame_end() -> None:
        frame_end()
        frames.append((app.bakes.on_screen, app.moving(time.monotonic()), app.worker.stats.submitted))

    app.frame_end = logged_frame_end

    def orbit(ctx, seconds: float, capture: str | None = None) -> tuple[int, int]:
        """Auto-orbit for a while (capturing the window halfway); returns the range of frames logged."""
        start = len(frames)
        app.state.camera.auto_orbit = True
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ctx.yield_()
            if capture and time.monotonic() > end - seconds / 2:
                testing.capture(ctx, str(out_dir / capture))
                capture = None
        app.state.camera.auto_orbit = False
        return start, len(frames)

    def scenario(ctx: imgui.test_engine.TestContext) -> None:
        try:
            ok = wait(ctx, lambda: app.model is not None and full_frame_of_current(), f"{model} frame", 120)
            ok = ok and wait(ctx, app.bakes.available, "bake", 120)
            s = app.bakes.stats
            results["bake"] = {"ok": ok, "thread": s.thread, "gui_thread": threading.current_thread().name,
                               "main_thread": threading.main_thread().name, "seconds": s.last_s,
                               "upload_s": s.upload_s, "baked": s.baked, "res": app.state.render.bake_res}
            # the preview of the view on screen, at the render's size, and the neural frame itself
            cam = app.state.camera.camera

            def read_preview():
                b = app.bakes
                cams = cam.to_cameras(app.model.cfg.camera)
                b.pass_.draw(cams, RES, "rgb", b.background(), app.model.cfg.render.far_opaque)
                b._draw_key = None  # let the viewport redraw at its own size
                return b.pass_.read_pixels(), threading.current_thread().name

            pixels, draw_thread = on_gui_thread(ctx, read_preview, "preview readback")
            np.save(out_dir / "preview.npy", pixels)
            save_png(pixels, out_dir / "preview.png")
            save_png(app.result.image, out_dir / "neural.png")
            results["view"] = {"camera": [cam.yaw, cam.pitch, cam.radius, cam.fov_deg, list(cam.look_at)],
                               "latent_class": app.result.request.latent.class_idx,
                               "latent_seed": app.result.request.latent.keyframes[0].seed,
                               "draw_thread": draw_thread}
            # auto-orbit: the preview on screen, at the viewport's size, no neural requests
            a, b = orbit(ctx, 3.0, "window_moving.png")
            moving = frames[a:b]
            results["orbit"] = {"frames": len(moving), "on_screen": sum(f[0] for f in moving),
                                "submitted": [moving[0][2], moving[-1][2]] if moving else [],
                                "target": list(app.bakes.pass_.target.size)}
            ok = wait(ctx, lambda: full_frame_of_current() and not app.bakes.on_screen, "neural after orbit", 120)
            results["still"] = {"ok": ok, "level": app.result.quality.level, "on_screen": app.bakes.on_screen}
            testing.capture(ctx, str(out_dir / "window_still.png"))
            # a drag on the image shows the preview too
            start = len(frames)
            ctx.item_drag_with_delta("//Viewport/##viewport", imgui.ImVec2(100, 30))
            ok = wait(ctx, full_frame_of_current, "neural after drag", 120)
            results["drag"] = {"ok": ok, "on_screen": sum(f[0] for f in frames[start:]),
                               "frames": len(frames) - start}
            # the Render panel's toggle: off -> neural previews while moving
            ctx.window_focus("//Render")
            ctx.yield_(2)
            ctx.item_click(TOGGLE)
            off = wait(ctx, lambda: not app.state.render.baked_preview, "toggle off", 10)
            a, b = orbit(ctx, 2.0)
            moving = frames[a:b]
            results["toggle_off"] = {"ok": off, "on_screen": sum(f[0] for f in moving), "frames": len(moving),
                                     "submitted": [moving[0][2], moving[-1][2]] if moving else []}
            wait(ctx, full_frame_of_current, "neural after the toggle", 120)
            ctx.item_click(TOGGLE)
            on = wait(ctx, lambda: app.state.render.baked_preview, "toggle on", 10)
            a, b = orbit(ctx, 1.5, "window_render_panel.png")
            results["toggle_on"] = {"ok": on, "on_screen": sum(f[0] for f in frames[a:b]), "frames": b - a}
            wait(ctx, full_frame_of_current, "neural at the end", 120)
            results["stats"] = {**vars(app.bakes.stats), "worker": vars(app.worker.stats)}
        except Exception:
            results["exception"] = traceback.format_exc()

    return h.run(scenario, slow_clicks=2.0, skip_without_gl=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), *sys.argv[2:3]))
