"""The viewer's panels: each module has `draw(app)` for one docked window.

`PANELS` lists (window name, dock space, draw function) in tab order; a new panel (meshes,
training) is one more module and one more entry here.
"""

from __future__ import annotations

from . import camera, export, help, latent, mesh, model, performance, render, viewport

PANELS = [
    ("Latent", "ControlSpace", latent.draw),
    ("Camera", "ControlSpace", camera.draw),
    ("Render", "ControlSpace", render.draw),
    ("Model", "ControlSpace", model.draw),
    ("Export", "ControlSpace", export.draw),
    ("Mesh", "ControlSpace", mesh.draw),
    ("Performance", "InfoSpace", performance.draw),
    ("Help", "InfoSpace", help.draw),
]

__all__ = ["PANELS", "viewport"]
