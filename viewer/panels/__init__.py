"""The viewer's panels: each module has `draw(app)` for one docked window.

`PANELS` lists (window name, dock space, draw function) in tab order. Three dock spaces hold them
(viewer/runner.py): VIEW_SPACE on the left (what is shown: latent, camera, render, model),
INFO_SPACE under it (performance, help) and TOOL_SPACE on the right (what is made from the
model: training, export, meshes). A new panel is one more module and one more entry here; a
tool panel goes to TOOL_SPACE (the names in `TOOL_PANELS` land there whatever space their entry
names, so that every tab strip fits its dock at the default window size).
"""

from __future__ import annotations

from . import camera, export, help, latent, mesh, model, performance, render, train, viewport

VIEW_SPACE = "ControlSpace"
INFO_SPACE = "InfoSpace"
TOOL_SPACE = "ToolSpace"
TOOL_PANELS = ("Training", "Export", "Mesh")

PANELS = [
    ("Latent", VIEW_SPACE, latent.draw),
    ("Camera", VIEW_SPACE, camera.draw),
    ("Render", VIEW_SPACE, render.draw),
    ("Model", VIEW_SPACE, model.draw),
    ("Training", TOOL_SPACE, train.draw),
    ("Export", TOOL_SPACE, export.draw),
    ("Mesh", TOOL_SPACE, mesh.draw),
    ("Performance", INFO_SPACE, performance.draw),
    ("Help", INFO_SPACE, help.draw),
]


def dock_space(name: str, space: str) -> str:
    """The dock space a panel lands in: TOOL_SPACE for the tool panels, else the one its entry names."""
    return TOOL_SPACE if name in TOOL_PANELS else space


__all__ = ["PANELS", "VIEW_SPACE", "INFO_SPACE", "TOOL_SPACE", "dock_space", "viewport"]
