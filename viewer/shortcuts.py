"""Keyboard shortcuts: one table drives both the handler and the help panel."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .camera import preset

if TYPE_CHECKING:
    from .app_api import ViewerApi


def _preset(name: str) -> Callable[[ViewerApi], None]:
    def act(app: ViewerApi) -> None:
        if app.model is not None:
            app.state.camera.camera = preset(name, app.model.cfg.camera, app.model.cfg.generator.family)
            app.camera_changed()
    return act


def _mode(mode: str) -> Callable[[ViewerApi], None]:
    def act(app: ViewerApi) -> None:
        app.state.render.mode = mode
    return act


def _seed(step: int) -> Callable[[ViewerApi], None]:
    def act(app: ViewerApi) -> None:
        lat = app.state.latent
        lat.w_path = ""
        lat.seed = max(0, lat.seed + step) if step else random.randrange(0, 2**31 - 1)
    return act


def _toggle(section: str, name: str) -> Callable[[ViewerApi], None]:
    def act(app: ViewerApi) -> None:
        obj = getattr(app.state, section)
        setattr(obj, name, not getattr(obj, name))
    return act


def _zoom(notches: float) -> Callable[[ViewerApi], None]:
    def act(app: ViewerApi) -> None:
        r0 = app.model.cfg.camera.radius if app.model else 1.0
        app.state.camera.camera = app.state.camera.camera.zoomed(notches, r0)
        app.camera_changed()
    return act


def _turn(deg: float) -> Callable[[ViewerApi], None]:
    def act(app: ViewerApi) -> None:
        app.state.camera.camera = app.state.camera.camera.orbited(math.radians(deg))
        app.camera_changed()
    return act


def _focus(window: str) -> None:
    from imgui_bundle import hello_imgui

    hello_imgui.get_runner_params().docking_params.focus_dockable_window(window)


# (key, ctrl, label, description, action)
SHORTCUTS: list[tuple[imgui.Key, bool, str, str, Callable[[ViewerApi], None]]] = [
    (imgui.Key.f, False, "F", "camera: front", _preset("front")),
    (imgui.Key.s, False, "S", "camera: side", _preset("side")),
    (imgui.Key.t, False, "T", "camera: top", _preset("top")),
    (imgui.Key.m, False, "M", "camera: dataset mean (reset)", _preset("mean")),
    (imgui.Key.r, False, "R", "camera: reset to the dataset mean", _preset("mean")),
    (imgui.Key.left_arrow, False, "Left / Right", "turn the camera by 15 degrees", _turn(-15)),
    (imgui.Key.right_arrow, False, "", "", _turn(15)),
    (imgui.Key.equal, False, "+ / -", "zoom in / out", _zoom(1)),
    (imgui.Key.keypad_add, False, "", "", _zoom(1)),
    (imgui.Key.minus, False, "", "", _zoom(-1)),
    (imgui.Key.keypad_subtract, False, "", "", _zoom(-1)),
    (imgui.Key.space, False, "Space", "auto-orbit on / off", _toggle("camera", "auto_orbit")),
    (imgui.Key.n, False, "N / P", "next / previous seed", _seed(1)),
    (imgui.Key.p, False, "", "", _seed(-1)),
    (imgui.Key.h, False, "H", "random seed", _seed(0)),
    (imgui.Key.i, False, "I", "keyframe interpolation on / off", _toggle("latent", "interp")),
    (imgui.Key.a, False, "A", "animate the interpolation", _toggle("latent", "animate")),
    (imgui.Key._1, False, "1 2 3 4", "render RGB / depth / opacity / normals", _mode("rgb")),
    (imgui.Key._2, False, "", "", _mode("depth")),
    (imgui.Key._3, False, "", "", _mode("opacity")),
    (imgui.Key._4, False, "", "", _mode("normals")),
    (imgui.Key._5, False, "5", "EG3D models: raw neural image / final image", _toggle("render", "raw_image")),
    (imgui.Key.g, False, "G", "viewport: mesh / volume render (same camera)", _toggle("mesh", "show_mesh")),
    (imgui.Key.o, True, "Ctrl+O", "open a checkpoint / run folder (file browser)",
     lambda app: app.file_dialog.open(app)),
    (imgui.Key.s, True, "Ctrl+S", "save a screenshot (export folder)", lambda app: app.save_screenshot_async()),
    (imgui.Key.f1, False, "F1", "show this help", lambda app: _focus("Help")),
]

MOUSE_HELP = [
    ("left drag on the image", "orbit (yaw / pitch around the look-at point)"),
    ("right or middle drag", "move the look-at point"),
    ("mouse wheel on the image", "zoom (camera radius)"),
    ("Ctrl+click a slider", "type a value"),
]


def handle_shortcuts(app: ViewerApi) -> None:
    """Run the actions of the shortcuts pressed this frame (not while typing, nor while a dialog is open)."""
    io = imgui.get_io()
    if io.want_text_input or app.file_dialog.visible:
        return
    for key, ctrl, _, _, action in SHORTCUTS:
        if io.key_ctrl == ctrl and imgui.is_key_pressed(key, False):
            action(app)
