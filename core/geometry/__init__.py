"""Geometry from the radiance field: density/colour grids, marching-cubes meshes in world
coordinates with per-vertex colours, and exporters (.ply, .obj, .glb, .mrc, .npy).

    from core.geometry import Box, generator_field, density_grid, extract_mesh, export
    field = generator_field(G, G.planes(w))               # points [1, N, 3] -> (rgb, sigma)
    grid = separable_grid(G, planes, Box.cube(cfg.generator.cube_scale), res=256)  # = density_grid(field, ...), faster
    level = generator_level(G, planes, grid).level      # matches the rendered silhouette
    mesh = extract_mesh(grid, level=level, color_field=field)
    export.save(mesh, "out/seed0000.ply")

A *field* is any callable points [1, N, 3] -> (rgb [1, N, 3] in [-1, 1], density [1, N]); the
generator-backed one goes through `G.query` (or `G.decode` for the reference's raw density), so
there is one implementation of the tri-plane math. Analytic fields (tests) plug in the same way.
"""

import importlib

# names -> the submodule that defines them, imported on first use (PEP 562): the renderer's
# occupancy grid uses the separable grid without paying for trimesh and the mesh exporters
_WHERE = {
    "export": None,
    "separable_grid": "fastgrid",
    **{n: "grid" for n in ("DEFAULT_CHUNK_POINTS", "Box", "Cancelled", "DensityGrid", "auto_level", "density_grid",
                           "generator_field", "generator_raw_field", "parse_box")},
    **{n: "level" for n in ("LevelChoice", "generator_level", "level_from_views")},
    **{n: "mesh" for n in ("NoSurfaceError", "extract_mesh", "vertex_colors")},
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'core.geometry' has no attribute {name!r}")
    module = importlib.import_module(f".{_WHERE[name] or name}", __name__)
    value = module if _WHERE[name] is None else getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
                   "DEFAULT_CHUNK_POINTS",
                   "Box",
                   "Cancelled",
                   "LevelChoice",
                   "generator_level",
                   "level_from_views",
                   "separable_grid",
                   "DensityGrid",
                   "NoSurfaceError",
                   "auto_level",
                   "density_grid",
                   "export",
                   "extract_mesh",
                   "generator_field",
                   "generator_raw_field",
                   "parse_box",
                   "vertex_colors",
]
