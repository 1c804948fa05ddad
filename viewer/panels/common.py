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


def line(text: str, color: imgui.ImVec4 | None = DIM) -> None:
    """Exactly one line of text (never wrapped: a longer one is clipped, and shown whole on hover).

    For status that changes while the user works: a wrapped text that grows by a line would move
    every control below it, under the user's (or the test engine's) mouse. color None: the
    style's text colour."""
    first = text.split("\n", 1)[0]
    if color is not None:
        imgui.push_style_color(imgui.Col_.text, color)
    imgui.text_unformatted(first)
    if color is not None:
        imgui.pop_style_color()
    if imgui.is_item_hovered() and (first != text or imgui.calc_text_size(first).x > imgui.get_content_region_avail().x):
        imgui.set_tooltip(text)


def combo(label: str, current: str, options: tuple[str, ...] | list[str]) -> tuple[bool, str]:
    """A combo over strings; returns (changed, value)."""
    idx = options.index(current) if current in options else 0
    changed, idx = imgui.combo(label, idx, list(options))
    return changed, options[idx]
