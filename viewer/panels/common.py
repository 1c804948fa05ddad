"""Small widgets shared by the panels."""

from __future__ import annotations

from imgui_bundle import imgui

ERROR = imgui.ImVec4(1.0, 0.45, 0.45, 1.0)
OK = imgui.ImVec4(0.5, 0.95, 0.55, 1.0)
DIM = imgui.ImVec4(0.65, 0.65, 0.65, 1.0)


def message(text: str | None) -> None:
    """A wrapped message line: red when it reads like a failure."""
    if not text:
        return
    bad = any(w in text.lower() for w in ("error", "fail", "no ", "not ", "cannot", "refused", "corrupt"))
    imgui.push_style_color(imgui.Col_.text, ERROR if bad else OK)
    imgui.text_wrapped(text)
    imgui.pop_style_color()


def hint(text: str) -> None:
    imgui.push_style_color(imgui.Col_.text, DIM)
    imgui.text_wrapped(text)
    imgui.pop_style_color()


def combo(label: str, current: str, options: tuple[str, ...] | list[str]) -> tuple[bool, str]:
    """A combo over strings; returns (changed, value)."""
    idx = options.index(current) if current in options else 0
    changed, idx = imgui.combo(label, idx, list(options))
    return changed, options[idx]
