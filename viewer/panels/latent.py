"""Latent panel: seed, random, psi, class, conditioning pose, keyframe interpolation, .npy latents, seed grid."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from core.errors import UserError

from ..latent import INTERP_MODES, LatentResolver, load_w, save_w
from .common import combo, hint, message

if TYPE_CHECKING:
    from ..app_api import ViewerApi

GRID_COLS, GRID_ROWS = 4, 2
POSE_MODES = {"mean": "the prior's mean camera", "camera": "follow the render camera", "custom": "fixed yaw/pitch"}


def draw(app: ViewerApi) -> None:
    lat = app.state.latent
    g = app.model.cfg.generator if app.model else None
    changed, seed = imgui.input_int("seed", lat.seed)
    if changed:
        lat.seed, lat.w_path = max(0, seed), ""
    imgui.same_line()
    if imgui.button("Random"):
        lat.seed, lat.w_path = random.randrange(0, 2**31 - 1), ""
    _, lat.psi = imgui.slider_float("truncation psi", lat.psi, 0.0, 1.5, "%.2f")
    if g is not None and g.c_dim > 0:
        names = app.model.info.get("meta", {}).get("class_names") or []
        k = _class_slider("class", lat.class_idx, g.c_dim, names)
        if k != lat.class_idx:
            lat.class_idx, lat.class_placed = k, True
    if g is not None and g.pose_cond:
        _pose(app)
    if lat.w_path:
        imgui.text(f"showing saved latent {Path(lat.w_path).name}")
        imgui.same_line()
        if imgui.small_button("use the seed"):
            lat.w_path = ""
    _files(app)
    _interpolation(app)
    _grid(app)


def _pose(app: ViewerApi) -> None:
    """The generator's conditioning camera (EG3D's camera label; EpiGRAF's pose conditioning)."""
    lat = app.state.latent
    modes = list(POSE_MODES)
    i = modes.index(lat.pose_mode) if lat.pose_mode in modes else 0
    _, i = imgui.combo("conditioning pose", i, list(POSE_MODES.values()))
    lat.pose_mode = modes[i]
    if lat.pose_mode == "custom":
        _, lat.pose = imgui.drag_float2("pose yaw/pitch", lat.pose, 0.01)
    cam = app.model.cfg.camera
    mean = f"yaw {math.degrees(cam.yaw_mean):.0f}, pitch {math.degrees(cam.pitch_mean):.0f} deg" + \
        (": EG3D's frontal camera" if app.model.eg3d and cam.yaw_mean == cam.pitch_mean == math.pi / 2 else "")
    hint(f"the camera the generator is conditioned on: the prior's mean ({mean}), the render camera (w and "
         "the planes are re-synthesised as it moves, as EG3D's visualizer offers), or a fixed yaw/pitch")


def _class_slider(label: str, value, c_dim: int, names: list, width: float = 0.0) -> int:
    """A class index slider that shows the class's name when the model carries the names."""
    k = min(max(int(value), 0), c_dim - 1) if isinstance(value, int) else 0
    shown = f"%d: {names[k].replace('%', '%%')}" if len(names) == c_dim else "%d"
    if width:
        imgui.set_next_item_width(width)
    return imgui.slider_int(label, k, 0, c_dim - 1, shown)[1]


def _files(app: ViewerApi) -> None:
    lat = app.state.latent
    imgui.separator_text("Saved latents (.npy, w)")
    _, lat.latent_file = imgui.input_text("file", lat.latent_file)
    if imgui.button("Save w") and app.model is not None:
        try:
            w = LatentResolver(app.model.G, app.model.device).resolve(app.latent_spec())
            save_w(lat.latent_file, w)
            app.messages["latent"] = f"saved w to {lat.latent_file}"
        except (UserError, OSError) as e:
            app.messages["latent"] = f"save failed: {e}"
    imgui.same_line()
    if imgui.button("Load w") and app.model is not None:
        try:
            load_w(lat.latent_file, app.model.cfg.generator.w_dim)
            lat.w_path, lat.interp = str(Path(lat.latent_file).expanduser().resolve()), False
            app.messages["latent"] = f"loaded {lat.latent_file}"
        except UserError as e:
            app.messages["latent"] = str(e)
    imgui.same_line()
    if imgui.button("Add as keyframe") and app.model is not None:
        try:
            load_w(lat.latent_file, app.model.cfg.generator.w_dim)
            lat.keyframes.append({"path": str(Path(lat.latent_file).expanduser().resolve())})
        except UserError as e:
            app.messages["latent"] = str(e)
    message(app.messages.get("latent"))


def _interpolation(app: ViewerApi) -> None:
    lat = app.state.latent
    imgui.separator_text("Interpolation")
    _, lat.interp = imgui.checkbox("interpolate between keyframes (I)", lat.interp)
    g = app.model.cfg.generator if app.model else None
    c_dim = g.c_dim if g is not None else 0
    names = (app.model.info.get("meta", {}).get("class_names") or []) if c_dim else []
    remove = None
    for i, k in enumerate(lat.keyframes):
        imgui.push_id(f"key{i}")
        if "path" in k:
            imgui.text(f"{i + 1}. w {Path(k['path']).name}")
        else:
            imgui.set_next_item_width(110 if c_dim else 140)
            changed, s = imgui.input_int(f"key {i + 1}", int(k.get("seed", 0)))
            if changed:
                k["seed"] = max(0, s)
            if c_dim:  # each seed keyframe its own class: interpolation morphs one object into another
                imgui.same_line()
                k["class"] = _class_slider(f"##class{i}", k.get("class", lat.class_idx), c_dim, names, 110)
        if len(lat.keyframes) > 2:
            imgui.same_line()
            if imgui.small_button("remove"):
                remove = i
        imgui.pop_id()
    if remove is not None:
        lat.keyframes.pop(remove)
    cls = {"class": min(max(lat.class_idx, 0), c_dim - 1)} if c_dim else {}
    if imgui.button("+ current seed"):
        lat.keyframes.append({"seed": lat.seed, **cls})
    imgui.same_line()
    if imgui.button("+ next seed"):
        seeds = [k["seed"] for k in lat.keyframes if "seed" in k]
        lat.keyframes.append({"seed": (max(seeds) + 1) if seeds else 0, **cls})
    _, lat.mode = combo("blend", lat.mode, INTERP_MODES)
    imgui.same_line()
    _, lat.loop = imgui.checkbox("loop", lat.loop)
    changed, t = imgui.slider_float("position", lat.t, 0.0, 1.0, "%.3f")
    if changed:
        lat.t, lat.interp = t, True
    _, lat.animate = imgui.checkbox("animate (A)", lat.animate)
    imgui.same_line()
    imgui.set_next_item_width(120)
    _, lat.period_s = imgui.slider_float("s per pass", lat.period_s, 0.5, 30.0, "%.1f")
    hint("lerp-w blends w linearly; slerp-z blends z on the sphere (and the keyframes' class labels linearly), "
         "then maps (saved w keyframes: lerp-w only)")


def _grid(app: ViewerApi) -> None:
    lat = app.state.latent
    imgui.separator_text("Seed grid")
    if imgui.small_button("<##grid"):
        lat.grid_base = max(0, lat.grid_base - GRID_COLS * GRID_ROWS)
    imgui.same_line()
    imgui.text(f"seeds {lat.grid_base}..{lat.grid_base + GRID_COLS * GRID_ROWS - 1}")
    imgui.same_line()
    if imgui.small_button(">##grid"):
        lat.grid_base += GRID_COLS * GRID_ROWS
    size = max(40.0, min(96.0, (imgui.get_content_region_avail().x - 8 * GRID_COLS) / GRID_COLS))
    for k in range(GRID_COLS * GRID_ROWS):
        seed = lat.grid_base + k
        tex = app.request_thumbnail(seed)
        imgui.push_id(f"grid{seed}")
        if tex is not None:
            clicked = imgui.image_button("##thumb", imgui.ImTextureRef(tex.id), imgui.ImVec2(size, size))
        else:
            clicked = imgui.button(f"{seed}", imgui.ImVec2(size + 8, size + 8))
        if imgui.is_item_hovered():
            imgui.set_tooltip(f"seed {seed}")
        if clicked:
            lat.seed, lat.w_path, lat.interp = seed, "", False
        imgui.pop_id()
        if (k + 1) % GRID_COLS:
            imgui.same_line()
