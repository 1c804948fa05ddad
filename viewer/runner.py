"""Window, docking layout and the run loop (hello_imgui / immapp) around a ViewerApp.

Layout (at any window size, 1280x800 included, every tab of a dock is visible: no tab-strip
arrows): the view controls (Latent, Camera, Render, Model) are tabs on the left, Performance and
Help below them; the tools (Training, Export, later Mesh) are tabs in a column on the right; the
viewport fills the middle. The layout is rebuilt at every start (the panel *values* are what
the session restores), so no imgui.ini is written next to the user's files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imgui_bundle import hello_imgui, imgui, immapp

from . import dragdrop
from .app import ViewerApp
from .panels import INFO_SPACE, PANELS, TOOL_SPACE, VIEW_SPACE, dock_space, file_dialog, viewport
from .panels.file_dialog import FileDialog
from .shortcuts import handle_shortcuts

WINDOW_TITLE = "EpiGRAF Studio"


def _split(initial: str, new: str, direction, ratio: float) -> hello_imgui.DockingSplit:
    s = hello_imgui.DockingSplit()
    s.initial_dock, s.new_dock, s.direction, s.ratio = initial, new, direction, ratio
    return s


def _window(label: str, space: str, gui, focus: bool = False) -> hello_imgui.DockableWindow:
    w = hello_imgui.DockableWindow()
    w.label, w.dock_space_name, w.gui_function = label, space, gui
    w.focus_window_at_next_frame = focus
    return w


def post_init(app: ViewerApp) -> None:
    """Once the window and its GL context exist: the app's GL objects, then drag-and-drop."""
    app.post_init()
    if app.display is not None:
        app.drop_enabled = dragdrop.install(
            lambda paths: app.messages.__setitem__("model", dragdrop.dispatch(app, paths)))


def frame_begin(app: ViewerApp) -> None:
    """Start of each frame: the app collects finished work and animates, then the per-frame hooks
    (the training panel's job, keyboard shortcuts, the open-file dialog) and the scripted mode."""
    app.frame_begin()
    app.training.update()
    handle_shortcuts(app)
    file_dialog.draw(app)
    app.scripted_step()


def runner_params(app: ViewerApp) -> hello_imgui.RunnerParams:
    """RunnerParams for the viewer (callers may add the test engine before running)."""
    rp = hello_imgui.RunnerParams()
    rp.app_window_params.window_title = WINDOW_TITLE
    rp.app_window_params.window_geometry.size = app.options.window_size
    rp.app_window_params.restore_previous_geometry = False
    rp.imgui_window_params.default_imgui_window_type = hello_imgui.DefaultImGuiWindowType.provide_full_screen_dock_space
    rp.imgui_window_params.show_status_bar = True
    rp.imgui_window_params.show_status_fps = True
    rp.imgui_window_params.show_menu_bar = True
    rp.imgui_window_params.show_menu_view_themes = True
    rp.ini_disable = True
    rp.fps_idling.fps_idle = 20.0
    app.file_dialog = FileDialog()
    rp.callbacks.post_init = lambda: post_init(app)
    rp.callbacks.before_exit = app.before_exit
    rp.callbacks.show_gui = lambda: frame_begin(app)
    rp.callbacks.post_render_dockable_windows = app.frame_end
    rp.callbacks.show_status = lambda: viewport.status_line(app)
    rp.docking_params.docking_splits = [
        _split("MainDockSpace", VIEW_SPACE, imgui.Dir.left, 0.28),
        _split(VIEW_SPACE, INFO_SPACE, imgui.Dir.down, 0.38),
        _split("MainDockSpace", TOOL_SPACE, imgui.Dir.right, 0.37),
    ]
    windows = [_window("Viewport", "MainDockSpace", lambda: viewport.draw(app))]
    shown: dict[str, str] = {}  # dock space -> the tab shown at start: the first one, or Training with --attach
    for name, space, _ in PANELS:
        shown.setdefault(dock_space(name, space), name)
    if app.options.attach_run:
        shown[dock_space("Training", TOOL_SPACE)] = "Training"
    for name, space, draw in PANELS:
        space = dock_space(name, space)
        windows.append(_window(name, space, (lambda d=draw: d(app)), focus=shown[space] == name))
    rp.docking_params.dockable_windows = windows
    rp.docking_params.layout_condition = hello_imgui.DockingLayoutCondition.application_start
    if app.options.register_tests is not None:
        rp.use_imgui_test_engine = True
        rp.callbacks.register_tests = app.options.register_tests
    return rp


def addons() -> immapp.AddOnsParams:
    return immapp.AddOnsParams(with_implot=True)


def run(app: ViewerApp) -> int:
    """Run the window until it closes; returns the process exit code."""
    try:
        immapp.run(runner_params(app), addons())
    except RuntimeError as e:  # GLFW could not open a window or an OpenGL 3.3 core context
        print(f"error: no usable OpenGL 3.3 display ({str(e).splitlines()[0][:160]}): run under "
              f"`xvfb-run -a python run_viewer.py ...` (Mesa: LIBGL_ALWAYS_SOFTWARE=1), or use "
              f"`python -m core.generate` for images and videos", file=sys.stderr)
        app.worker.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)  # the native runner is left half set up: skip its destructors (they abort)
    if app.gl_error:
        print(f"error: {app.gl_error}; try LIBGL_ALWAYS_SOFTWARE=1 (Mesa llvmpipe), or use "
              f"`python -m core.generate` for images and videos", file=sys.stderr)
        return 2
    if app.options.window_screenshot is not None and app.exit_code == 0:
        save_window_screenshot(app.options.window_screenshot)
    return app.exit_code


def save_window_screenshot(path: Path) -> None:
    """Save the last frame of the (exited) window as PNG."""
    from PIL import Image

    img = hello_imgui.final_app_window_screenshot()
    if img is None or img.size == 0:
        print("warning: no window screenshot available", file=sys.stderr)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img[..., :3]).save(path)
    print(f"wrote {path} (window {img.shape[1]}x{img.shape[0]})")


def display_problem() -> str | None:
    """A one-line reason the viewer cannot open a window here, or None when a display looks usable."""
    if not sys.platform.startswith("linux") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "no display found (DISPLAY is unset)"
    try:  # ask Xlib directly, so that GLFW's own error lines never reach the user
        import ctypes

        xlib = ctypes.CDLL("libX11.so.6")
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        handle = xlib.XOpenDisplay(display.encode())
    except OSError:
        return None  # no Xlib to ask: let GLFW try
    if not handle:
        return f"cannot connect to the X display '{display}'"
    xlib.XCloseDisplay(handle)
    return None
