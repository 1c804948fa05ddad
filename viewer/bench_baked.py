"""The baked preview's part of `python -m viewer.bench` (--part baked): bake time, GL upload time,
GUI frame rate while orbiting and PSNR against the neural render.

It opens a window holding only the preview (the viewport at res x res, drawn through Dear ImGui
as the viewer draws its viewport), turns the camera 2 degrees every frame, and takes the median
time between frames: the GUI's own frame time, with the preview pass drawn every frame from the
current camera. Resolutions alternate within each repeat (128, 256, 512, 128, ...), so a change
of machine load hits them alike. The pass alone is timed too (glFinish around each draw). PSNR:
the preview read back with glReadPixels against `G.render` of the same camera at full quality
(the viewer's default samples) at the same resolution, over a few views around the object.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch

from core.bench_paths import psnr
from core.images import image_to_uint8
from core.render.bake import bake

from .camera import preset

ORBIT_DEG_PER_FRAME = 2.0


def views(cam_cfg, n: int) -> list:
    """n cameras around the object: yaw steps of 360/n degrees from the mean camera, pitch alternating
    between the equator and 30 degrees above it."""
    base = preset("mean", cam_cfg)
    return [base.orbited(2 * math.pi * k / n).dragged(0, 0 if k % 2 == 0 else 52) for k in range(n)]


def background01(model) -> tuple[float, float, float]:
    from core.networks.generator import background_color

    t = background_color(model.cfg.render.background, "cpu", torch.float32)
    return tuple(float((c + 1) / 2) for c in t)


def run(model, planes: torch.Tensor, w: torch.Tensor, resolutions: list[int], bake_res: int, repeats: int,
        frames: int, psnr_views: int) -> dict:
    """Measure everything; returns {"bake_s", "upload_s", "occupied", "rows": {res: {...}}} or {"error"}."""
    G = model.G
    bake_s = []
    for _ in range(3):
        t = time.perf_counter()
        field = bake(G, planes, bake_res)
        bake_s.append(time.perf_counter() - t)
    cams = views(model.cfg.camera, psnr_views)
    refs: dict[int, list[np.ndarray]] = {}
    neural_s: dict[int, float] = {}
    for res in resolutions:
        t = time.perf_counter()
        refs[res] = [image_to_uint8(G.render(planes, c.to_cameras(model.cfg.camera, device=planes.device),
                                             resolution=res, w=w, show_background=False)["image"][0])
                     for c in cams]
        neural_s[res] = (time.perf_counter() - t) / len(cams)
    out = {"bake_s": float(np.median(bake_s)), "occupied": field.occupied_fraction(), "res": bake_res,
           "rows": {r: {"neural_s": neural_s[r]} for r in resolutions}}
    _gl_phase(model, field, resolutions, repeats, frames, cams, refs, out)
    return out


def _gl_phase(model, field, resolutions, repeats, frames, cams, refs, out) -> None:
    from imgui_bundle import hello_imgui, imgui, immapp

    from .baked_preview import BakedPreviewPass
    from .gl import GLUnavailable, require_gl33

    cfg, bg, far_opaque = model.cfg.camera, background01(model), model.cfg.render.far_opaque
    phases = [res for _ in range(repeats) for res in resolutions]
    warmup = 5
    st = {"phase": -1, "frame": 0, "stamps": {r: [] for r in resolutions}, "k": 0}
    base = preset("mean", cfg)

    def setup() -> None:
        out["gl"] = require_gl33()
        p = st["pass"] = BakedPreviewPass()
        out["first_upload_s"] = p.upload(field)  # allocates the texture
        out["upload_s"] = float(np.median([p.upload(field) for _ in range(3)]))  # a new bake of the same size
        for res in resolutions:  # PSNR, then the pass alone
            scores = []
            for cam, ref in zip(cams, refs[res]):
                p.draw(cam.to_cameras(cfg), res, "rgb", bg, far_opaque)
                scores.append(psnr(p.read_pixels(), ref, peak=255.0))
            out["rows"][res].update(psnr_mean=float(np.mean(scores)), psnr_min=float(np.min(scores)))
        from OpenGL import GL
        for res in resolutions:
            times = []
            for k in range(3 * repeats):
                GL.glFinish()
                t = time.perf_counter()
                p.draw(base.orbited(math.radians(7 * k)).to_cameras(cfg), res, "rgb", bg, far_opaque)
                GL.glFinish()
                times.append(time.perf_counter() - t)
            out["rows"][res]["pass_ms"] = float(np.median(times) * 1000)

    def gui() -> None:
        rp = hello_imgui.get_runner_params()
        try:
            if "pass" not in st:
                setup()
                st["phase"], st["frame"] = 0, 0
                hello_imgui.change_window_size((phases[0], phases[0]))
            res = phases[st["phase"]]
            st["k"] += 1
            cam = base.orbited(math.radians(ORBIT_DEG_PER_FRAME * st["k"]))
            tex = st["pass"].draw(cam.to_cameras(cfg), res, "rgb", bg, far_opaque)
            imgui.get_background_draw_list().add_image(imgui.ImTextureRef(tex), imgui.ImVec2(0, 0),
                                                       imgui.ImVec2(res, res))
            st["frame"] += 1
            if st["frame"] > warmup:
                st["stamps"][res].append(time.perf_counter())
            if st["frame"] >= warmup + frames:
                st["stamps"][res].append(None)  # phase boundary
                st["phase"] += 1
                st["frame"] = 0
                if st["phase"] >= len(phases):
                    rp.app_shall_exit = True
                else:
                    hello_imgui.change_window_size((phases[st["phase"]], phases[st["phase"]]))
        except (GLUnavailable, Exception) as e:
            out["error"] = f"{type(e).__name__}: {e}"
            rp.app_shall_exit = True

    rp = hello_imgui.RunnerParams()
    rp.app_window_params.window_title = "baked preview benchmark"
    rp.app_window_params.window_geometry.size = (resolutions[0], resolutions[0])
    rp.app_window_params.restore_previous_geometry = False
    rp.imgui_window_params.default_imgui_window_type = hello_imgui.DefaultImGuiWindowType.no_default_window
    rp.fps_idling.enable_idling = False
    rp.fps_idling.vsync_to_monitor = False
    rp.ini_disable = True
    rp.callbacks.show_gui = gui
    try:
        immapp.run(rp)
    except RuntimeError as e:
        out["error"] = f"no OpenGL 3.3 window ({str(e).splitlines()[0][:120]})"
        return
    if "pass" in st:
        st["pass"].delete()
    for res, stamps in st["stamps"].items():
        deltas, prev = [], None
        for s in stamps:
            if s is not None and prev is not None:
                deltas.append(s - prev)
            prev = s
        if deltas:
            out["rows"][res]["frame_ms"] = float(np.median(deltas) * 1000)


def print_table(out: dict, model_name: str) -> None:
    if "error" in out:
        print(f"baked preview: {out['error']}", file=sys.stderr)
        return
    print(f"baked preview of {model_name}: bake {out['res']}^3 in {out['bake_s']:.2f} s "
          f"({out['occupied'] * 100:.0f}% of occupancy cells occupied), GL upload {out['first_upload_s'] * 1000:.0f} ms "
          f"(then {out['upload_s'] * 1000:.0f} ms), {out.get('gl', '?')}")
    print("| res | GUI frame (ms) | GUI fps | preview pass (ms) | PSNR vs G.render (dB, mean / min) | G.render full (s) |")
    print("|---|---|---|---|---|---|")
    for res, r in out["rows"].items():
        fm = r.get("frame_ms")
        fps = f"{1000 / fm:.1f}" if fm else "-"
        print(f"| {res}^2 | {fm:.1f} | {fps} | {r.get('pass_ms', float('nan')):.1f} | "
              f"{r.get('psnr_mean', float('nan')):.1f} / {r.get('psnr_min', float('nan')):.1f} | "
              f"{r['neural_s']:.2f} |" if fm else f"| {res}^2 | - | - | - | - | - |")
    sys.stdout.flush()
