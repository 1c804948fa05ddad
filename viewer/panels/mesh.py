"""Mesh panel: marching cubes from the radiance field (core.geometry), in the background.

Resolution with a memory/time estimate; the surface (visibility: the occlusion's iso-surface, which
fills opaque shells; or the density's); its level, automatic (the level whose surface matches the
rendered silhouette) or set by hand, with a live 64^3 preview mesh in the
viewport; crop box; cleanup; Extract with a progress bar and Cancel; the viewport toggle between
the volume render and the mesh (key G; same camera); export buttons (atomic writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from .. import meshing
from ..state import MESH_RESOLUTIONS, MESH_SHADING, SURFACES
from .common import hint, line, message

if TYPE_CHECKING:
    from ..app_api import ViewerApi

FORMATS = ("ply", "obj", "glb", "mrc", "npy")
SHADING_LABELS = {"shaded": "shaded", "colors": "vertex colours"}
SURFACE_LABELS = {"visibility": "visibility (fills opaque shells)", "density": "density"}
SURFACE_HELP = ("visibility: the surface where light from outside is blocked (the occlusion, 1 - the best "
                "transmittance over 26 directions); hollow or torn density shells come out solid, openings "
                "stay open. density: the iso-surface of the density itself.")


def draw(app: ViewerApi) -> None:
    m = app.state.mesh
    ctl = app.mesh
    ctl.panel_seen = ctl.frame
    if app.model is None:
        hint("no model loaded")
        return
    g = app.model.cfg.generator
    _draw_display(m, ctl)
    _draw_grid(app, m, ctl, g)
    _draw_surface_and_level(m, ctl)
    imgui.separator_text("Cleanup")
    _, m.keep_components = imgui.slider_int("keep largest parts (0 = all)", m.keep_components, 0, 10)
    _, m.smooth = imgui.slider_int("Taubin smoothing", m.smooth, 0, 50)
    _, m.decimate = imgui.slider_float("keep faces (decimation)", m.decimate, 0.01, 1.0, "%.2f")
    _draw_extract_and_export(app, ctl)
    _draw_status(m, ctl)


def _draw_display(m, ctl) -> None:
    """Whether and how the viewport shows the mesh, and what mesh there is."""
    _, m.show_mesh = imgui.checkbox("show the mesh in the viewport (G)", m.show_mesh)
    for i, mode in enumerate(MESH_SHADING):
        if imgui.radio_button(SHADING_LABELS[mode], m.shading == mode):
            m.shading = mode
        if i < len(MESH_SHADING) - 1:
            imgui.same_line()
    shown = ctl.shown_mesh()
    if shown is None:
        line("no mesh yet")
    else:
        which = "extracted" if ctl.result is not None and shown is ctl.result.mesh else "preview (64^3)"
        line(f"{which}: {len(shown.vertices)} vertices, {len(shown.faces)} faces")


def _draw_grid(app: ViewerApi, m, ctl, g) -> None:
    """Resolution (with its memory and time estimate) and the crop box."""
    imgui.separator_text("Grid")
    _, res = imgui.slider_int("resolution", m.resolution, MESH_RESOLUTIONS[0], MESH_RESOLUTIONS[-1])
    m.resolution = min(max(int(res), MESH_RESOLUTIONS[0]), MESH_RESOLUTIONS[-1])
    nbytes, seconds = meshing.estimate(m.resolution, g.decoder_hidden, app.device.type, ctl.rate, surface=m.surface)
    line(f"~{meshing.human_bytes(nbytes)}, ~{_duration(seconds)} ({m.resolution ** 3 / 1e6:.1f} M nodes, "
         f"{'measured' if ctl.rate else 'default'} rate)")
    _, m.crop = imgui.checkbox("crop box", m.crop)
    if m.crop:
        _, lo = imgui.drag_float3("min (x cube)", m.crop_lo, 0.005, -1.0, 1.0, "%.3f")
        _, hi = imgui.drag_float3("max (x cube)", m.crop_hi, 0.005, -1.0, 1.0, "%.3f")
        lo, hi = [float(v) for v in lo], [float(v) for v in hi]
        if all(b > a + 1e-3 for a, b in zip(lo, hi)):
            m.crop_lo, m.crop_hi = lo, hi
        box = meshing.crop_box(m, g.cube_scale)
        line(f"world box {tuple(round(v, 3) for v in box.lo)} .. {tuple(round(v, 3) for v in box.hi)}")


def _draw_surface_and_level(m, ctl) -> None:
    """The surface (visibility or density) and its level: automatic, or a slider."""
    imgui.separator_text("Surface")
    for i, s in enumerate(SURFACES[::-1]):
        if imgui.radio_button(SURFACE_LABELS[s], m.surface == s):
            m.surface = s
        if imgui.is_item_hovered():
            imgui.set_tooltip(SURFACE_HELP)
        if i < len(SURFACES) - 1:
            imgui.same_line()
    imgui.separator_text(f"Level ({meshing.surface_name(m.surface)})")
    _, m.auto_level = imgui.checkbox("automatic (match the rendered silhouette)", m.auto_level)
    pv = ctl.preview
    auto = pv.auto_level if pv.auto_surface == m.surface else None  # None while a switch recomputes it
    if m.auto_level:
        line(f"automatic level {auto:.4g} (64^3 preview; Extract recomputes it)"
             if auto is not None else "automatic level: computing ...")
    else:
        if m.surface == "visibility":
            _, m.occlusion_level = imgui.slider_float("level", m.occlusion_level, 1e-3, 0.999, "%.4g",
                                                      imgui.SliderFlags_.logarithmic)  # young models: ~0.05
        else:
            hi = max(10.0, 2.0 * (auto or 1.0), m.level)
            _, m.level = imgui.slider_float("level", m.level, 1e-3, hi, "%.4g", imgui.SliderFlags_.logarithmic)
        imgui.begin_disabled(auto is None)
        if imgui.button("use the automatic value"):
            if m.surface == "visibility":
                m.occlusion_level = float(auto)
            else:
                m.level = float(auto)
        imgui.end_disabled()
    _, m.preview = imgui.checkbox("live preview (64^3, re-extracted when the level or box changes)", m.preview)


def _draw_extract_and_export(app: ViewerApi, ctl) -> None:
    imgui.separator_text("Extract")
    job = ctl.job  # one row either way: the button, then the progress of the running (or last) job
    if job is None:
        if imgui.button("Extract"):
            ctl.start()
    elif imgui.button("Cancel"):
        ctl.cancel()
    imgui.same_line()
    if job is not None:
        imgui.progress_bar(job.progress, imgui.ImVec2(-1, 0), f"{job.stage} {100 * job.progress:.0f}%")
    else:
        imgui.progress_bar(1.0 if ctl.result is not None else 0.0, imgui.ImVec2(-1, 0),
                           "done" if ctl.result is not None else "idle")
    imgui.separator_text("Export")
    # one line (clipped, whole on hover): a scrollbar appearing cannot re-wrap it and move the buttons
    line(f"into {app.state.export.out_dir} (world coordinates; .mrc / .npy hold the density grid)")
    for i, f in enumerate(FORMATS):
        if imgui.button(f"Save .{f}"):
            ctl.export([f])
        if i < len(FORMATS) - 1:
            imgui.same_line()


def _draw_status(m, ctl) -> None:
    """Status last: these texts come and go and wrap, and nothing below them can move."""
    imgui.separator_text("Status")
    pv = ctl.preview
    if pv.busy:
        hint("preview: updating ...")
    elif pv.error and (m.preview or m.show_mesh):
        message(pv.error)
    if m.auto_level and pv.auto_describe and pv.auto_surface == m.surface:
        hint(pv.auto_describe)
    if ctl.message and ctl.message.startswith("mesh "):
        hint(ctl.message)  # a finished extraction (its level text may contain words message() reads as errors)
    else:
        message(ctl.message)
    message(ctl.export_message)


def _duration(s: float) -> str:
    return f"{s:.1f} s" if s < 90 else f"{s / 60:.1f} min"
