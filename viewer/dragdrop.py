"""Drag-and-drop of files onto the window, through the GLFW that imgui-bundle ships (no extra package).

`install(handler)` registers a GLFW drop callback on hello_imgui's window (call it from post_init,
on the GUI thread); `dispatch(app, paths)` decides what a dropped path means: a checkpoint or a
run folder opens as the model, a .npy file becomes the shown w latent.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app_api import ViewerApi

_DROPFUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p))
_keep: list = []  # the ctypes callback must outlive the window


def install(handler: Callable[[list[str]], None]) -> bool:
    """Call `handler(paths)` when files are dropped on the window; False when GLFW is not reachable."""
    try:
        import imgui_bundle
        from imgui_bundle import hello_imgui

        window = hello_imgui.get_glfw_window_address()
        if not window:
            return False
        lib = ctypes.CDLL(str(Path(imgui_bundle.__file__).parent / "libglfw.so.3"))
    except (OSError, AttributeError, ImportError):
        return False

    def on_drop(_window, count: int, paths) -> None:
        handler([paths[i].decode("utf-8", errors="replace") for i in range(count)])

    cb = _DROPFUN(on_drop)
    lib.glfwSetDropCallback.restype = ctypes.c_void_p
    lib.glfwSetDropCallback.argtypes = [ctypes.c_void_p, _DROPFUN]
    lib.glfwSetDropCallback(ctypes.c_void_p(window), cb)
    _keep.append(cb)
    return True


def dispatch(app: ViewerApi, paths: list[str]) -> str:
    """Act on dropped paths (the first usable one wins); returns what was done, for the status line."""
    for p in paths:
        path = Path(p)
        if path.suffix == ".npy" and path.is_file():
            lat = app.state.latent
            lat.latent_file, lat.w_path, lat.interp = str(path), str(path.resolve()), False
            return f"showing the dropped latent {path.name}"
        if path.is_dir() or path.suffix in (".pt", ".pth", ".ckpt", ".pkl"):
            app.ui_text["open"] = str(path)
            app.open_model(str(path))
            return f"opening {path}"
    return "dropped files ignored: drop a checkpoint (.pt, or an official .pkl), a run folder or a latent (.npy)"
