"""Help panel: keyboard shortcuts and mouse controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from ..shortcuts import MOUSE_HELP, SHORTCUTS
from .common import hint

if TYPE_CHECKING:
    from ..app_api import ViewerApi


def draw(app: ViewerApi) -> None:
    flags = imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_h
    if imgui.begin_table("##shortcuts", 2, flags):
        for _, _, label, desc, _ in SHORTCUTS:
            if label:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(label)
                imgui.table_next_column()
                imgui.text(desc)
        for what, desc in MOUSE_HELP:
            imgui.table_next_row()
            imgui.table_next_column()
            imgui.text(what)
            imgui.table_next_column()
            imgui.text(desc)
        imgui.end_table()
    hint("Shortcuts are ignored while a text field has the keyboard. Every action has a command-line "
         "equivalent: python run_viewer.py --help, python -m core.generate --help.")
