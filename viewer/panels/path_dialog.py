"""A small folder / file picker (a modal popup) for the panels' path fields.

It lists folders through viewer/file_browser.py like the "Open checkpoint" dialog, but picks a path
instead of opening a model: `PathDialog.open(start, on_pick, want_dir)`, then `draw()` every frame
from the same panel (the popup lives in that panel's ID stack). Double-click enters a folder; a
file (file mode) is picked by double-click or "Choose"; folder mode picks the current folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imgui_bundle import imgui

from core.errors import UserError

from ..file_browser import Entry, list_dir, normalise, parent, start_folder
from .common import message

FOLDER = imgui.ImVec4(0.55, 0.75, 1.0, 1.0)


class PathDialog:
    def __init__(self, title: str):
        self.title = title
        self.folder = ""
        self.path_text = ""
        self.entries: list[Entry] = []
        self.error: str | None = None
        self.selected: Entry | None = None
        self.want_dir = False
        self.allow_dir = False
        self.visible = False
        self._on_pick: Callable[[str], None] | None = None
        self._open_request = False

    def open(self, start: str, on_pick: Callable[[str], None], want_dir: bool = False, allow_dir: bool = False) -> None:
        """Show the dialog at `start` (a file's folder, a folder, or the cwd when it does not exist).
        want_dir: pick a folder (files hidden); allow_dir: pick a file or the current folder."""
        self._on_pick, self.want_dir, self._open_request = on_pick, want_dir, True
        self.allow_dir = allow_dir
        p = Path(start).expanduser() if start else Path.cwd()
        while not p.exists() and p != p.parent:
            p = p.parent
        self.navigate(str(p if p.is_dir() else p.parent) if start else start_folder(""))

    def navigate(self, folder: str) -> None:
        self.folder = self.path_text = normalise(folder)
        self.selected = None
        try:
            entries = list_dir(self.folder, show_all=True)
            self.entries, self.error = [e for e in entries if e.is_dir or not self.want_dir], None
        except UserError as e:
            self.entries, self.error = [], str(e)

    def _pick(self, path: str) -> None:
        if self._on_pick is not None:
            self._on_pick(path)
        self.visible = False
        imgui.close_current_popup()

    def draw(self) -> None:
        if self._open_request:
            imgui.open_popup(self.title)
            self._open_request = False
        vp = imgui.get_main_viewport()
        imgui.set_next_window_size(imgui.ImVec2(min(640.0, vp.size.x * 0.9), min(420.0, vp.size.y * 0.8)),
                                   imgui.Cond_.appearing)
        imgui.set_next_window_pos(vp.get_center(), imgui.Cond_.appearing, imgui.ImVec2(0.5, 0.5))
        shown, _ = imgui.begin_popup_modal(self.title, True)
        self.visible = shown
        if not shown:
            return
        go = None
        if imgui.button("Up"):
            go = parent(self.folder)
        imgui.same_line()
        imgui.set_next_item_width(-1)
        entered, self.path_text = imgui.input_text("##pick_path", self.path_text,
                                                   imgui.InputTextFlags_.enter_returns_true)
        if entered:
            go = self.path_text
        if self.error:
            message(f"error: {self.error}")
        footer = imgui.get_frame_height_with_spacing() * 1.4
        imgui.begin_child("##pick_list", imgui.ImVec2(0, -footer))
        flags = imgui.SelectableFlags_.allow_double_click | imgui.SelectableFlags_.no_auto_close_popups
        for e in self.entries:
            if e.is_dir:
                imgui.push_style_color(imgui.Col_.text, FOLDER)
            clicked, _ = imgui.selectable(e.name + ("/" if e.is_dir else ""), self.selected == e, flags)
            if e.is_dir:
                imgui.pop_style_color()
            if clicked:
                self.selected = e
                if imgui.is_mouse_double_clicked(imgui.MouseButton_.left):
                    go = e.path if e.is_dir else go
                    if not e.is_dir:
                        self._pick(e.path)
        imgui.end_child()
        sel = self.selected
        if self.want_dir:
            target = sel.path if sel is not None and sel.is_dir else self.folder
            if imgui.button("Choose folder"):
                self._pick(target)
            imgui.same_line()
            imgui.text(target)
        else:
            imgui.begin_disabled(sel is None or sel.is_dir)
            if imgui.button("Choose"):
                self._pick(sel.path)
            imgui.end_disabled()
            if self.allow_dir:
                imgui.same_line()
                if imgui.button("Choose this folder"):
                    self._pick(self.folder)
        imgui.same_line()
        if imgui.button("Cancel"):
            self.visible = False
            imgui.close_current_popup()
        if go is not None and self.visible:
            self.navigate(go)
        imgui.end_popup()
