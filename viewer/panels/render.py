"""Render panel: RGB / depth / opacity / normals (EG3D: and the raw neural image), colour map and range,
samples, background, resolution."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..bake_jobs import BAKE_RESOLUTIONS
from ..eg3d_render import preview_neural_res
from ..export import depth_range
from ..rendering import MIN_COARSE
from ..state import COLORMAPS, RENDER_MODES, RESOLUTIONS
from .common import combo, hint, line

if TYPE_CHECKING:
    from ..app_api import ViewerApi

MODE_LABELS = {"rgb": "RGB", "depth": "Depth", "opacity": "Opacity", "normals": "Normals", "ddepth": "D depth"}


def draw(app: ViewerApi) -> None:
    r = app.state.render
    adaptor = app.model is not None and getattr(app.model.G, "depth_adaptor", None) is not None
    if r.mode == "ddepth" and app.model is not None and not adaptor:
        r.mode = "depth"  # a model without 3DGP's depth adaptor has no such channel
    modes = [m for m in RENDER_MODES if m != "ddepth" or adaptor]
    for i, mode in enumerate(modes):
        if imgui.radio_button(MODE_LABELS[mode], r.mode == mode):
            r.mode = mode
        if i < len(modes) - 1 and mode != "normals":  # 3DGP's "D depth" on a line of its own (panel width)
            imgui.same_line()
    eg3d = app.model is not None and app.model.eg3d
    if eg3d:
        _eg3d_image(app)
    if r.mode == "depth":
        _, r.colormap = combo("colour map", r.colormap, COLORMAPS)
        _, r.auto_range = imgui.checkbox("auto range (visible surface)", r.auto_range)
        if r.auto_range and app.result is not None:
            lo, hi = depth_range(app.result, r)
            hint(f"range {lo:.3f} .. {hi:.3f} (near = warm end)")
            r.depth_range = [lo, hi]
        else:
            _, r.depth_range = imgui.drag_float2("depth range", r.depth_range, 0.002, 0.0, 10.0)
    elif r.mode == "normals" and eg3d:
        hint("EG3D: camera-space normals from the depth image (neural resolution, upsampled): x right = red, "
             "y up = green, towards the camera = blue")
    elif r.mode == "ddepth":
        hint("3DGP: the depth channel the discriminator sees (the depth adaptor's last output; near dark, far "
             "light). Neural frames only: the baked preview is off in this mode.")
    elif r.mode == "normals":
        hint("camera-space normals from the density gradient (autograd through G.query): "
             "x right = red, y up = green, towards the camera = blue")
    imgui.separator_text("Quality")
    _, r.resolution = _resolution_combo("resolution", r.resolution)
    _, r.coarse_mult = imgui.slider_float("coarse samples x", r.coarse_mult, 0.25, 4.0, "%.2f")
    _, r.fine_mult = imgui.slider_float("fine samples x", r.fine_mult, 0.0, 4.0, "%.2f")
    if app.model is not None:
        rc = app.model.cfg.render
        hint(f"{max(MIN_COARSE, round(rc.num_coarse * r.coarse_mult))} coarse + {round(rc.num_fine * r.fine_mult)} "
             f"fine samples per ray at full quality")
    _, r.progressive = imgui.checkbox("progressive refinement when still", r.progressive)
    _, r.adaptive = imgui.checkbox("adaptive resolution while moving", r.adaptive)
    if eg3d and imgui.is_item_hovered():
        imgui.set_tooltip("EpiGRAF models; an EG3D model renders its moving frames at half its neural resolution")
    _, r.target_fps = imgui.slider_float("target fps", r.target_fps, 2.0, 60.0, "%.0f")
    _, r.moving_samples = imgui.slider_float("samples x while moving", r.moving_samples, 0.1, 1.0, "%.2f")
    _baked_preview(app)
    imgui.separator_text("Background")
    if app.model is not None and app.model.cfg.generator.bg_model != "none":
        _, r.show_bg_model = imgui.checkbox("the model's background scene", r.show_bg_model)
        if imgui.is_item_hovered():
            imgui.set_tooltip("the background MLP behind the object (NeRF++ sphere); off: the object alone")
    _, r.model_background = imgui.checkbox("the model's background", r.model_background)
    if not r.model_background:
        _, col = imgui.color_edit3("colour", r.background)
        r.background = [float(c) for c in col]


def _resolution_combo(label: str, value: int) -> tuple[bool, int]:
    """A combo of the usual resolutions (plus the current one when it was set elsewhere, e.g. --res)."""
    options = sorted({*RESOLUTIONS, int(value)})
    changed, text = combo(label, str(value), [str(x) for x in options])
    return changed, int(text)


def _eg3d_image(app: ViewerApi) -> None:
    """An EG3D model's final (super-resolved) or raw neural image, and what each is."""
    r, cfg = app.state.render, app.model.cfg
    nr = cfg.generator.neural_res
    _, r.raw_image = imgui.checkbox("raw neural image (5)", r.raw_image)
    if imgui.is_item_hovered():
        imgui.set_tooltip("RGB mode: the neural render before the super-resolution instead of the final image")
    hint(f"EG3D: neural render {nr}^2 ({preview_neural_res(nr)}^2 while moving) -> super-resolution "
         f"{cfg.img_resolution}^2, shown at {r.resolution}^2; depth, opacity and raw at the neural resolution")


def _baked_preview(app: ViewerApi) -> None:
    """The baked GL preview's toggle, its grid resolution and what it is doing."""
    r = app.state.render
    if app.model is not None and app.model.eg3d:
        hint("baked preview: off for EG3D models (a baked field has no super-resolution)")
        return
    _, r.baked_preview = imgui.checkbox("baked preview while moving", r.baked_preview)
    if imgui.is_item_hovered():
        imgui.set_tooltip("while the camera moves, ray-march the latent's baked colour and density with OpenGL "
                          "at the viewport's size; the neural render replaces it once the view is still")
    if not r.baked_preview:
        return
    options = sorted({*BAKE_RESOLUTIONS, int(r.bake_res)})
    _, text = combo("bake grid", str(r.bake_res), [str(x) for x in options])
    r.bake_res = int(text)
    b, s = app.bakes, app.bakes.stats
    if b.error:
        status = b.error
    elif b.available():
        status = f"baked {r.bake_res}^3 in {s.last_s:.2f} s, uploaded in {s.upload_s * 1000:.0f} ms"
    elif b.busy:
        status = "baking ..."
    else:
        status = "bakes after the latent's first frame"
    line(status)
    if app.model is not None and app.model.cfg.generator.bg_model != "none":
        hint("the preview shows the plain background colour, not the model's background scene")
