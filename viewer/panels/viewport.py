"""The viewport: the render (through the display shader, or the baked GL preview while the camera
moves), orbit by drag, zoom by wheel, quality badge."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from imgui_bundle import imgui

if TYPE_CHECKING:
    from ..app_api import ViewerApi

PAN_PER_PIXEL = 0.002  # look-at shift per pixel of right/middle drag, times the radius

PREVIEW_COLOR = imgui.ImVec4(1.0, 0.8, 0.2, 1.0)
FULL_COLOR = imgui.ImVec4(0.4, 1.0, 0.5, 1.0)
ERROR_COLOR = imgui.ImVec4(1.0, 0.4, 0.4, 1.0)


def _pan(app: ViewerApi, dx: float, dy: float) -> None:
    """Move the look-at point in the image plane (drag right: the object follows the mouse)."""
    cam = app.state.camera.camera
    c2w = cam.to_cameras(app.model.cfg.camera).cam2world[0]
    k = PAN_PER_PIXEL * cam.radius
    right, up = c2w[:3, 0].tolist(), c2w[:3, 1].tolist()
    new = cam.copy()
    new.look_at = [cam.look_at[i] - k * dx * right[i] + k * dy * up[i] for i in range(3)]
    app.state.camera.camera = new
    app.camera_changed()


def _interact(app: ViewerApi) -> None:
    io = imgui.get_io()
    cam_state = app.state.camera
    active = imgui.is_item_active()
    app.dragging = active
    if app.model is None:
        return
    r0 = app.model.cfg.camera.radius
    if active and imgui.is_mouse_down(imgui.MouseButton_.left) and (io.mouse_delta.x or io.mouse_delta.y):
        cam_state.camera = cam_state.camera.dragged(io.mouse_delta.x, io.mouse_delta.y, cam_state.sensitivity)
        app.camera_changed()
    elif active and (io.mouse_delta.x or io.mouse_delta.y) and (
            imgui.is_mouse_down(imgui.MouseButton_.right) or imgui.is_mouse_down(imgui.MouseButton_.middle)):
        _pan(app, io.mouse_delta.x, io.mouse_delta.y)
    if imgui.is_item_hovered() and io.mouse_wheel:
        cam_state.camera = cam_state.camera.zoomed(io.mouse_wheel, r0)
        app.camera_changed()


def draw(app: ViewerApi) -> None:
    """The Viewport window."""
    avail = imgui.get_content_region_avail()
    line = imgui.get_text_line_height_with_spacing()
    side = int(max(32, min(avail.x, avail.y - line)))
    x0 = imgui.get_cursor_pos_x() + max(0.0, (avail.x - side) / 2)
    imgui.set_cursor_pos_x(x0)
    p0 = imgui.get_cursor_screen_pos()
    flags = imgui.ButtonFlags_.mouse_button_left | imgui.ButtonFlags_.mouse_button_right | \
        imgui.ButtonFlags_.mouse_button_middle
    imgui.invisible_button("##viewport", imgui.ImVec2(side, side), flags)
    _interact(app)
    dl = imgui.get_window_draw_list()
    p1 = imgui.ImVec2(p0.x + side, p0.y + side)
    tex = app.display_texture(side)
    if tex is not None:
        dl.add_image(imgui.ImTextureRef(tex), p0, p1)
    else:
        dl.add_rect_filled(p0, p1, imgui.get_color_u32(imgui.Col_.frame_bg))
    _badge(app, dl, p0, p1)


def _badge(app: ViewerApi, dl, p0: imgui.ImVec2, p1: imgui.ImVec2) -> None:
    """Quality/resolution indicator in the image's top-left corner, state messages in the middle."""
    r = app.result
    pad = 6
    if app.state.mesh.show_mesh:
        mesh = app.mesh.shown_mesh()
        which = "extracted" if app.mesh.result is not None and mesh is app.mesh.result.mesh else "preview 64^3"
        text = f"mesh ({which}): {len(mesh.faces)} faces  [G: volume render]" if mesh is not None else \
            "mesh: none yet (Mesh panel)  [G: volume render]"
        _label(dl, p0, pad, text, FULL_COLOR)
    elif app.bakes.on_screen:
        side = int(p1.x - p0.x)
        busy = "  (refining...)" if app.worker.busy else ""
        _label(dl, p0, pad, f"baked preview {app.state.render.bake_res}^3 (OpenGL)  {side}x{side}{busy}",
               PREVIEW_COLOR)
    elif r is not None:
        q = r.quality
        busy = app.worker.busy
        size = f"{q.resolution}x{q.resolution}"
        if q.neural_res is not None:  # EG3D: the final image over the neural render, or the raw one
            raw = app.state.render.raw_image and app.state.render.mode == "rgb"
            size = f"raw neural {q.neural_res}^2" if raw else f"{size} (neural {q.neural_res}^2)"
        text = f"{q.level} {size}  {q.num_coarse}+{q.num_fine} samples  " \
               f"{r.render_s * 1000:.0f} ms" + ("  (refining...)" if busy and q.level != "full" else "")
        _label(dl, p0, pad, text, FULL_COLOR if q.level == "full" else PREVIEW_COLOR)
    msg = None
    if app.model is None and app.loader.loading:
        dots = "." * (1 + int(time.monotonic() * 2) % 3)
        msg = f"loading {app.loader.loading} {dots}"
    elif app.model_error and app.model is None:
        msg = app.model_error
    elif app.worker.error:
        msg = f"render failed: {app.worker.error}"
    if msg:
        size = imgui.calc_text_size(msg)
        c = imgui.ImVec2((p0.x + p1.x - size.x) / 2, (p0.y + p1.y - size.y) / 2)
        dl.add_rect_filled(imgui.ImVec2(c.x - 6, c.y - 4), imgui.ImVec2(c.x + size.x + 6, c.y + size.y + 4),
                           0xC0000000, 4.0)
        col = ERROR_COLOR if (app.model_error or app.worker.error) else FULL_COLOR
        dl.add_text(c, imgui.get_color_u32(col), msg)


def _label(dl, p0: imgui.ImVec2, pad: int, text: str, color: imgui.ImVec4) -> None:
    """One line of text on a dark box in the image's top-left corner."""
    size = imgui.calc_text_size(text)
    dl.add_rect_filled(imgui.ImVec2(p0.x + pad - 3, p0.y + pad - 2),
                       imgui.ImVec2(p0.x + pad + size.x + 3, p0.y + pad + size.y + 2), 0xB0000000, 3.0)
    dl.add_text(imgui.ImVec2(p0.x + pad, p0.y + pad), imgui.get_color_u32(color), text)


def status_line(app: ViewerApi) -> None:
    """The status bar: model, camera and what is on screen."""
    cam = app.state.camera.camera
    name = (app.model.cfg.name + (" (EG3D)" if app.model.eg3d else "")) if app.model else "-"
    imgui.text(f"model {name} | yaw {cam.yaw:+.2f} pitch {cam.pitch:.2f} r {cam.radius:.2f} fov {cam.fov_deg:.0f}"
               f" | {app.state.render.mode} | {app.device.type} x{app.torch_threads} threads")
