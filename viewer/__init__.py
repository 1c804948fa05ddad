"""EpiGRAF Studio's desktop viewer (Dear ImGui via imgui-bundle, PyOpenGL core profile).

Layout: logic that needs no display (camera.py, latent.py, state.py, session.py, rendering.py,
render_worker.py, export.py, model.py, colormaps.py) and the GUI on top of it (app.py, gl.py,
panels/). The viewer imports `core`; `core` never imports the viewer. Every pixel comes from
`G.render` / `G.query`: there is no second copy of the rendering math here.
"""
