"""Marching cubes on a DensityGrid -> a trimesh in world coordinates, with cleanup and colours.

Vertices are placed in world coordinates (the cameras' frame: `grid.world(index)`), faces are
oriented outwards (density higher inside), normals come from the faces (area-weighted), and
per-vertex colours are looked up at the final vertex positions (after cleanup), in one of two ways:
"ray" (default) composites the field along the inward normal, front to back with the renderer's
compositing op, as a camera looking straight at the vertex would see it; "surface" takes the
field's rgb at the vertex itself. They agree for a sharp surface; for a soft one (a young model,
whose rendered colour comes from below the iso-surface) only "ray" matches the renders.
By default the volume is padded with one layer below the level so that an object cut by the crop
box is closed by caps lying on the box faces (watertight meshes).
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from .. import kernels
from ..errors import UserError
from .grid import DEFAULT_CHUNK_POINTS, DensityGrid, Field

BACKENDS = ("pymcubes", "skimage")
COLOR_MODES = ("ray", "surface")
RAY_SAMPLES = 32


class NoSurfaceError(UserError):
    """The level lies outside the density range of the grid: no surface."""


def _marching_cubes(vol: np.ndarray, level: float, backend: str) -> tuple[np.ndarray, np.ndarray]:
    if backend == "pymcubes":
        import mcubes
        v, f = mcubes.marching_cubes(vol, level)
        # PyMCubes' winding is outward for "inside = above the level" (densities): kept as is.
        return np.asarray(v, np.float64), np.asarray(f, np.int64)
    if backend == "skimage":
        from skimage.measure import marching_cubes
        v, f, _, _ = marching_cubes(vol, level, gradient_direction="descent")
        # scikit-image winds the other way round on [x, y, z] arrays: flip to outward.
        return np.asarray(v, np.float64), np.ascontiguousarray(np.asarray(f, np.int64)[:, ::-1])
    raise UserError(f"unknown marching-cubes backend '{backend}' ({', '.join(BACKENDS)})")


def _check_level(grid: DensityGrid, level: float) -> None:
    lo, hi = float(np.nanmin(grid.values)), float(np.nanmax(grid.values))
    if not (lo < level < hi):
        what = "occlusion" if grid.kind == "occlusion" else f"{grid.kind} density"
        raise NoSurfaceError(
            f"no surface at level {level:.4g} ({what}): the {what} in the box ranges "
            f"from {lo:.4g} to {hi:.4g}; pass --level between them (or check --box)")


def extract_mesh(grid: DensityGrid, level: float, backend: str = "pymcubes", close: bool = True,
                 keep_components: int = 1, smooth_iterations: int = 0, target_faces: int | None = None,
                 decimate: float | None = None, color_field: Field | None = None, chunk_points: int = DEFAULT_CHUNK_POINTS,
                 color_mode: str = "ray", color_depth: float | None = None) -> trimesh.Trimesh:
    """Iso-surface of grid.values at `level` as a trimesh in world coordinates.

    keep_components: keep the N largest connected components by face count (0 = all).
    smooth_iterations: Taubin smoothing (volume-preserving) iterations, 0 = none.
    target_faces: quadric decimation to about this many faces (needs fast_simplification).
    decimate: quadric decimation keeping about this fraction (0, 1] of the faces (fast_simplification
    through trimesh); applied after smoothing, before the colours are looked up.
    color_field: a field whose colours become the vertex colours (uint8 RGBA), by `color_mode`
    ("ray": composited along the inward normal over `color_depth` world units, default a tenth of
    the crop box's largest side; "surface": the rgb at the vertex).
    """
    if color_mode not in COLOR_MODES:
        raise UserError(f"unknown colour mode '{color_mode}' ({', '.join(COLOR_MODES)})")
    _check_level(grid, level)
    vol = grid.values
    offset = 0.0
    if close:
        pad = min(float(vol.min()), level) - max(1.0, abs(level))
        vol = np.pad(vol, 1, mode="constant", constant_values=pad)
        offset = -1.0
    verts_idx, faces = _marching_cubes(vol, level, backend)
    if len(faces) == 0:
        raise NoSurfaceError(f"no surface at level {level:.4g}: marching cubes found no triangles")
    verts = grid.world(verts_idx + offset)
    if close:  # the caps sit on the crop box faces
        verts = np.clip(verts, grid.box.lo, grid.box.hi)
    mesh = trimesh.Trimesh(verts, faces, process=True, validate=False)
    mesh = cleanup(mesh, keep_components, smooth_iterations, target_faces, decimate)
    if color_field is not None:
        if color_mode == "ray":
            depth = color_depth if color_depth is not None else 0.1 * float(np.max(np.subtract(grid.box.hi, grid.box.lo)))
            mesh.visual.vertex_colors = ray_vertex_colors(color_field, mesh.vertices, mesh.vertex_normals, depth,
                                                          chunk_points=chunk_points)
        else:
            mesh.visual.vertex_colors = vertex_colors(color_field, mesh.vertices, chunk_points)
    _ = mesh.vertex_normals  # computed and cached so exporters write them
    return mesh


def cleanup(mesh: trimesh.Trimesh, keep_components: int = 1, smooth_iterations: int = 0,
            target_faces: int | None = None, decimate: float | None = None) -> trimesh.Trimesh:
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if keep_components and keep_components > 0:
        parts = mesh.split(only_watertight=False)
        if len(parts) > keep_components:
            parts = sorted(parts, key=lambda m: len(m.faces), reverse=True)[:keep_components]
            mesh = trimesh.util.concatenate(parts)
    if smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=smooth_iterations)
    if decimate is not None:
        if not 0 < decimate <= 1:
            raise UserError(f"decimate is the fraction of faces to keep, in (0, 1]; got {decimate}")
        if decimate < 1:
            want = max(4, int(round(decimate * len(mesh.faces))))
            target_faces = min(target_faces or want, want)
    if target_faces and len(mesh.faces) > target_faces:
        try:
            mesh = mesh.simplify_quadric_decimation(face_count=int(target_faces))
            mesh.merge_vertices()
            mesh.update_faces(mesh.nondegenerate_faces())
            mesh.remove_unreferenced_vertices()
        except (ImportError, ModuleNotFoundError):
            raise UserError("decimation needs the optional package fast_simplification "
                            "(pip install fast-simplification)") from None
    return mesh


@torch.no_grad()
def vertex_colors(field: Field, vertices: np.ndarray, chunk_points: int = DEFAULT_CHUNK_POINTS) -> np.ndarray:
    """The field's rgb ([-1, 1]) at world vertices -> uint8 RGBA [V, 4]."""
    out = np.empty((len(vertices), 4), np.uint8)
    v = torch.from_numpy(np.asarray(vertices, np.float32))
    for s in range(0, len(v), chunk_points):
        rgb, _ = field(v[s:s + chunk_points][None])
        out[s:s + chunk_points] = _to_rgba(rgb.reshape(-1, 3).float().cpu().numpy())
    return out


def _to_rgba(c: np.ndarray) -> np.ndarray:
    out = np.full((len(c), 4), 255, np.uint8)
    out[:, :3] = np.clip(np.rint((c + 1) * 127.5), 0, 255).astype(np.uint8)
    return out


@torch.no_grad()
def ray_vertex_colors(field: Field, vertices: np.ndarray, normals: np.ndarray, depth: float,
                      samples: int = RAY_SAMPLES, chunk_points: int = DEFAULT_CHUNK_POINTS) -> np.ndarray:
    """Each vertex's colour as seen by a camera looking along its inward normal -> uint8 RGBA [V, 4].

    The ray starts depth/4 outside the vertex and runs depth/4 + depth inwards; `samples` evenly
    spaced points are composited front to back (core.kernels.composite, the renderer's op) and the
    colour is normalised by the accumulated opacity. Where the ray accumulates no opacity, the
    field's rgb at the vertex is used."""
    v = torch.from_numpy(np.asarray(vertices, np.float32))
    n = torch.from_numpy(np.asarray(normals, np.float32))
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    t = torch.linspace(0.0, 1.25 * depth, samples)
    out = np.empty((len(v), 3), np.float32)
    per = max(1, chunk_points // samples)
    for s in range(0, len(v), per):
        vs, ns = v[s:s + per], n[s:s + per]
        pts = (vs + 0.25 * depth * ns)[:, None, :] - t[None, :, None] * ns[:, None, :]  # [V, S, 3]
        rgb, sigma = field(pts.reshape(1, -1, 3))
        rgb = rgb.reshape(len(vs), samples, 3).float()
        sigma = sigma.reshape(len(vs), samples).float()
        comp = kernels.composite(rgb, sigma, t.expand(len(vs), samples).contiguous(), far_opaque=False)
        hit = comp["opacity"] > 1e-4
        color = comp["rgb"] / comp["opacity"].clamp_min(1e-4)[:, None]
        if not hit.all():
            at_vertex, _ = field(vs[~hit][None])
            color[~hit] = at_vertex.reshape(-1, 3).float()
        out[s:s + per] = color.cpu().numpy()
    return _to_rgba(out)
