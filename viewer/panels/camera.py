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
    imgui.separator_text("Motion")
    _, cs.sensitivity = imgui.slider_float("drag sensitivity", cs.sensitivity, 0.1, 4.0)
    _, cs.auto_orbit = imgui.checkbox("auto-orbit (Space)", cs.auto_orbit)
    imgui.same_line()
    imgui.set_next_item_width(120)
    _, cs.orbit_dps = imgui.slider_float("deg/s", cs.orbit_dps, -180.0, 180.0)
    message(app.messages.get("camera"))
