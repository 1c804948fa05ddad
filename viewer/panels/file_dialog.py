"""The "Open checkpoint" dialog: an in-app file browser (Dear ImGui widgets only, no system dialog).

Opened by the model panel's "Browse..." button or Ctrl+O. It lists a folder through
viewer/file_browser.py (folders first, then .pt / .pkl / .npy files; "show all files" for the
rest), with an editable path, "Up", and double-click to enter a folder or open a file. Files open
through `app.open_model`, the same path as typing a spec (a .npy file becomes the shown latent, as
when dropped); a run folder opens at its newest snapshot. The dialog stays open until the load
finished: a failure is shown in it, a success closes it. The folder browsed last is kept in the
session (`state.model.browse_dir`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from imgui_bundle import imgui

from core.errors import UserError

from ..file_browser import Entry, format_mtime, format_size, is_run_folder, list_dir, normalise, parent, start_folder
from .common import DIM, OK, hint, message

if TYPE_CHECKING:
    from ..app_api import ViewerApi

TITLE = "Open checkpoint"
FOLDER = imgui.ImVec4(0.55, 0.75, 1.0, 1.0)


class FileDialog:
    """The dialog's state between frames (the listing is cached: it is re-read on navigation only)."""

    def __init__(self) -> None:
        self.visible = False
        self._open_request = False
        self._close_request = False
        self.folder = ""
        self.path_text = ""
        self.show_all = False
        self.entries: list[Entry] = []
        self.error: str | None = None  # the folder could not be listed
        self.selected: Entry | None = None
        self.pending: str | None = None  # the spec being opened from the dialog
        self.folder_is_run = False
        self.load_error: str | None = None  # the last open from the dialog failed

    def open(self, app: ViewerApi) -> None:
        """Show the dialog in the current model's folder (else the last browsed one, else the cwd)."""
        self._open_request, self.pending, self.load_error = True, None, None
        st = app.state.model
        self.navigate(app, start_folder(app.model.spec if app.model else st.spec, st.browse_dir))

    def close(self) -> None:
        self._close_request = True

    def navigate(self, app: ViewerApi, folder: str) -> None:
        """List `folder`; an unreadable one shows an error line and an empty list."""
        self.folder = self.path_text = normalise(folder)
        self.selected = None
        self.refresh(app)

    def refresh(self, app: ViewerApi) -> None:
        """Re-read the current folder."""
        try:
            self.entries, self.error = list_dir(self.folder, self.show_all), None
            app.state.model.browse_dir = self.folder
        except UserError as e:
            self.entries, self.error = [], str(e)
        self.folder_is_run = self.error is None and is_run_folder(self.folder)

    def open_entry(self, app: ViewerApi, entry: Entry) -> None:
        """Enter a folder, or open a file (a checkpoint as the model, a .npy as the shown latent)."""
        if entry.is_dir:
            self.navigate(app, entry.path)
        elif entry.name.lower().endswith(".npy"):
            lat = app.state.latent
            lat.latent_file, lat.w_path, lat.interp = entry.path, str(Path(entry.path).resolve()), False
            app.messages["model"] = f"showing the latent {entry.name}"
            self.close()
        else:
            self.open_spec(app, entry.path)

    def open_spec(self, app: ViewerApi, spec: str) -> None:
        """Open a checkpoint file or a run folder through the model panel's path."""
        app.ui_text["open"] = spec
        self.pending, self.load_error = spec, None
        app.open_model(spec)

    def poll(self, app: ViewerApi) -> None:
        """Close once the model opened from the dialog has loaded (a failure keeps it open)."""
        if self.pending is not None and app.loader.loading is None:
            self.load_error = app.model_error
            if self.load_error is None:
                self.close()
            self.pending = None


def _entry_rows(app: ViewerApi, d: FileDialog) -> Entry | None:
    """The listing table; returns the entry double-clicked this frame, if any."""
    activated = None
    flags = (imgui.TableFlags_.scroll_y | imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_v |
             imgui.TableFlags_.resizable)
    footer = imgui.get_frame_height_with_spacing() * 2.2
    if not imgui.begin_table("##files", 3, flags, imgui.ImVec2(0, -footer)):
        return None
    imgui.table_setup_scroll_freeze(0, 1)
    imgui.table_setup_column("Name", imgui.TableColumnFlags_.width_stretch)
    imgui.table_setup_column("Size", imgui.TableColumnFlags_.width_fixed, imgui.calc_text_size("run folder  ").x)
    imgui.table_setup_column("Modified", imgui.TableColumnFlags_.width_fixed,
                             imgui.calc_text_size("0000-00-00 00:00 ").x)
    imgui.table_headers_row()
    sel_flags = (imgui.SelectableFlags_.span_all_columns | imgui.SelectableFlags_.allow_double_click |
                 imgui.SelectableFlags_.no_auto_close_popups)
    for e in d.entries:
        imgui.table_next_row()
        imgui.table_next_column()
        colour = FOLDER if e.is_dir else (None if e.openable else DIM)
        if colour is not None:
            imgui.push_style_color(imgui.Col_.text, colour)
        clicked, _ = imgui.selectable(e.name, d.selected == e, sel_flags)
        if colour is not None:
            imgui.pop_style_color()
        if clicked:
            d.selected = e
            if imgui.is_mouse_double_clicked(imgui.MouseButton_.left):
                activated = e
        imgui.table_next_column()
        imgui.text("run folder" if e.is_run else "folder" if e.is_dir else format_size(e.size))
        imgui.table_next_column()
        imgui.text(format_mtime(e.mtime))
    if not d.entries and d.error is None:
        imgui.table_next_row()
        imgui.table_next_column()
        hint("(no folders or checkpoints here)")
    imgui.end_table()
    return activated


def _footer(app: ViewerApi, d: FileDialog) -> None:
    """Selection line and the Open / Open run folder / Cancel buttons."""
    sel = d.selected
    run_target = sel.path if sel is not None and sel.is_run else (d.folder if d.folder_is_run else None)
    busy = d.pending is not None
    imgui.begin_disabled(sel is None or busy)
    if imgui.button("Open"):
        d.open_entry(app, sel)
    imgui.end_disabled()
    if run_target is not None:
        imgui.same_line()
        imgui.begin_disabled(busy)
        if imgui.button("Open run folder"):
            app.state.model.run_dir = app.ui_text["run_dir"] = run_target
            d.open_spec(app, run_target)
        imgui.end_disabled()
        if imgui.is_item_hovered():
            imgui.set_tooltip(f"open the newest network-snapshot-*.pt in {run_target}")
    imgui.same_line()
    if imgui.button("Cancel"):
        d.close()
    imgui.same_line()
    if busy:
        imgui.text(f"loading {Path(d.pending).name} ...")
    elif sel is not None:
        imgui.push_style_color(imgui.Col_.text, OK if (sel.openable or sel.is_dir) else DIM)
        imgui.text(sel.name + ("  (run folder)" if sel.is_run else "/" if sel.is_dir else ""))
        imgui.pop_style_color()


def draw(app: ViewerApi) -> None:
    """Draw the dialog when it is open (call once per frame, outside any panel window)."""
    d: FileDialog = app.file_dialog
    d.poll(app)
    if d._open_request:
        imgui.open_popup(TITLE)
        d._open_request = False
    vp = imgui.get_main_viewport()
    imgui.set_next_window_size(imgui.ImVec2(min(760.0, vp.size.x * 0.9), min(480.0, vp.size.y * 0.85)),
                               imgui.Cond_.appearing)
    imgui.set_next_window_pos(vp.get_center(), imgui.Cond_.appearing, imgui.ImVec2(0.5, 0.5))
    imgui.set_next_window_bg_alpha(1.0)  # opaque: the panels behind must not show through the listing
    shown, _ = imgui.begin_popup_modal(TITLE, True)
    d.visible = shown
    if not shown:
        d._close_request = False
        return
    if d._close_request or (imgui.is_window_focused() and imgui.is_key_pressed(imgui.Key.escape, False)
                            and not imgui.get_io().want_text_input):
        d._close_request = d.visible = False
        imgui.close_current_popup()
        imgui.end_popup()
        return
    go = None
    if imgui.button("Up"):
        go = parent(d.folder)
    imgui.same_line()
    imgui.set_next_item_width(-imgui.calc_text_size("show all files").x - imgui.get_frame_height() * 2)
    entered, d.path_text = imgui.input_text("##browse_path", d.path_text, imgui.InputTextFlags_.enter_returns_true)
    if entered:
        go = d.path_text
    imgui.same_line()
    changed, d.show_all = imgui.checkbox("show all files", d.show_all)
    if changed:
        d.refresh(app)
    if d.error:
        message(f"error: {d.error}")
    elif d.load_error:
        message(d.load_error)
    activated = _entry_rows(app, d)
    if activated is not None:
        d.open_entry(app, activated)
    elif go is not None:
        d.navigate(app, go)
    _footer(app, d)
    imgui.end_popup()
