"""Camera panel: numeric yaw/pitch/radius/fov, look-at, presets, drag sensitivity, auto-orbit."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..camera import FOV_RANGE, PITCH_EPS, PRESETS, RADIUS_RANGE, preset
from .common import hint, message

if TYPE_CHECKING:
    from ..app_api import ViewerApi


def draw(app: ViewerApi) -> None:
    cs = app.state.camera
    cam = cs.camera.copy()
    r0 = app.model.cfg.camera.radius if app.model else 1.0
    ch = [False] * 6
    ch[0], cam.yaw = imgui.slider_angle("yaw", cam.yaw, -180.0, 180.0)
    ch[1], cam.pitch = imgui.slider_angle("pitch", cam.pitch, math.degrees(PITCH_EPS), 180 - math.degrees(PITCH_EPS))
    ch[2], cam.radius = imgui.drag_float("radius", cam.radius, 0.005, RADIUS_RANGE[0] * r0, RADIUS_RANGE[1] * r0)
    ch[3], cam.fov_deg = imgui.slider_float("fov (deg)", cam.fov_deg, FOV_RANGE[0], FOV_RANGE[1])
    ch[4], cam.look_at = imgui.drag_float3("look-at", cam.look_at, 0.002)
    if any(ch):
        cs.camera = cam.normalised(r0)
        app.camera_changed()
    front = "yaw 0 is frontal (+x)"
    if app.model is not None and app.model.eg3d:  # EG3D's world: the frontal camera on +z
        front = "EG3D: yaw 90 deg is frontal (+z)"
    hint(f"{front}, pitch 90 deg the equator. Drag the image to orbit, wheel to zoom, "
         "right-drag to move the look-at point.")
    imgui.separator_text("Presets")
    for name in PRESETS:
        if imgui.button(name.capitalize() if name != "mean" else "Dataset mean") and app.model is not None:
            cs.camera = preset(name, app.model.cfg.camera, app.model.cfg.generator.family)
            app.camera_changed()
        imgui.same_line()
    imgui.new_line()
    if app.model is not None and getattr(app.model.G, "camera_gen", None) is not None:
        _learned(app)
    imgui.separator_text("Motion")
    _, cs.sensitivity = imgui.slider_float("drag sensitivity", cs.sensitivity, 0.1, 4.0)
    _, cs.auto_orbit = imgui.checkbox("auto-orbit (Space)", cs.auto_orbit)
    imgui.same_line()
    imgui.set_next_item_width(120)
    _, cs.orbit_dps = imgui.slider_float("deg/s", cs.orbit_dps, -180.0, 180.0)
    message(app.messages.get("camera"))


_summaries: dict[tuple, object] = {}  # (model uid, class) -> learned_camera.Summary, computed once


def _learned(app: ViewerApi) -> None:
    """3DGP: the model's learned camera distribution (viewer/learned_camera.py)."""
    from core.runtime import class_label

    from ..learned_camera import mean_orbit, sample_orbit, summarise

    cs, model = app.state.camera, app.model
    g = model.cfg.generator
    cls = min(max(app.state.latent.class_idx, 0), g.c_dim - 1) if g.c_dim else None
    c = class_label(g.c_dim, cls)
    imgui.separator_text("Learned cameras (3DGP)")
    if imgui.button("Sample a camera"):
        cs.learned_draws += 1
        cs.camera = sample_orbit(model.G, c, cs.learned_draws).normalised(model.cfg.camera.radius)
        app.camera_changed()
    imgui.same_line()
    if imgui.button("Mean camera"):
        cs.camera = mean_orbit(model.G, c).normalised(model.cfg.camera.radius)
        app.camera_changed()
    key = (model.uid, cls)
    if key not in _summaries:
        _summaries.clear()
        _summaries[key] = summarise(model.G, c)
    hint("learned distribution (1024 samples" + (" of this class" if cls is not None else "") + "): "
         + "; ".join(_summaries[key].lines()))
    hint("auto-orbit turns around the current look-at point: the mean camera's after 'Mean camera'")
