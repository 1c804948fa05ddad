"""The mesh panel's logic, free of GUI and GL: settings -> a core.geometry extraction, estimates,
the preview grid cache, vertex arrays for the GL pass and the camera matrices of the viewport.

Extraction goes through core.geometry (the separable grid, its occlusion for the visibility surface,
the silhouette-matched automatic level,
marching cubes in world coordinates, cleanup, vertex colours), so a mesh from the panel equals one
from `python -m core.extract_mesh` with the same settings. The viewport draws meshes with the
render's own camera: `view_matrix` inverts the cam2world of `OrbitCamera.to_cameras`, and
`projection_matrix` is built from the same normalised intrinsics that `core.render.rays.make_rays`
uses, so a mesh vertex lands on the pixel whose ray passes through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.cameras import Cameras
from core.geometry import Box, export
from core.geometry.fastgrid import separable_grid
from core.geometry.grid import DensityGrid, generator_field
from core.geometry.level import LevelChoice, surface_level
from core.geometry.mesh import NoSurfaceError, extract_mesh
from core.geometry.visibility import surface_grid

PREVIEW_RES = 64
DEFAULT_RATE = {"cpu": 3.0e6, "cuda": 2.0e8}  # grid nodes per second before the first measurement
# node-directions per second of core.geometry.visibility: CPU measured (2-core CPU under load: 256^3 in
# 3.3 s, 1.3e8); CUDA not measured yet (a guess: one plane step is a few kernel launches)
OCCLUSION_RATE = {"cpu": 1.0e8, "cuda": 1.0e9}


@dataclass(frozen=True)
class MeshParams:
    """One extraction: grid resolution, level (None = automatic; in the surface's units), box, cleanup,
    and which surface: "density" (iso-surface of the density) or "visibility" (of its occlusion)."""

    resolution: int
    level: float | None
    box: Box
    keep_components: int = 1
    smooth: int = 0
    decimate: float = 1.0
    colors: bool = True
    surface: str = "density"


def crop_box(state_mesh, cube_scale: float) -> Box:
    """The panel's crop box (fractions of cube_scale) in world units, or the whole cube."""
    if not state_mesh.crop:
        return Box.cube(cube_scale)
    lo = tuple(float(v) * cube_scale for v in state_mesh.crop_lo)
    hi = tuple(float(v) * cube_scale for v in state_mesh.crop_hi)
    return Box(lo, hi)


def params_from_state(state_mesh, cube_scale: float) -> MeshParams:
    m = state_mesh
    return MeshParams(int(m.resolution), None if m.auto_level else level_of(m), crop_box(m, cube_scale),
                      int(m.keep_components), int(m.smooth), float(m.decimate), surface=m.surface)


def level_of(state_mesh) -> float:
    """The hand-set level of the chosen surface (an occlusion, or an activated density)."""
    m = state_mesh
    return float(m.occlusion_level if m.surface == "visibility" else m.level)


def surface_name(surface: str) -> str:
    """What the level of a surface measures, for labels and messages."""
    return "occlusion" if surface == "visibility" else "activated density"


def estimate(resolution: int, hidden: int, device_type: str = "cpu", rate: float | None = None,
             with_rgb: bool = False, surface: str = "density") -> tuple[int, float]:
    """(bytes, seconds) for a grid of resolution^3: the float32 grid (and rgb when asked), the yz
    table of projected rows (res^2 x hidden) and the marching-cubes output (a rough 3x the surface
    nodes); seconds from the measured (or default) nodes per second. The visibility surface adds
    its occlusion grid and 26 sweeps over the nodes (OCCLUSION_RATE)."""
    n = resolution ** 3
    grid = n * 4 * (4 if with_rgb else 1)
    table = resolution ** 2 * hidden * 4
    mesh = 24 * 6 * resolution ** 2 * 4  # vertices + faces of a surface of a few res^2 cells
    rate = rate or DEFAULT_RATE.get(device_type, DEFAULT_RATE["cpu"])
    seconds = n / rate
    if surface == "visibility":
        grid += n * 4
        seconds += 26 * n / OCCLUSION_RATE.get(device_type, OCCLUSION_RATE["cpu"])
    return grid + table + mesh, seconds


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@dataclass
class MeshResult:
    """A finished extraction."""

    mesh: object  # trimesh.Trimesh in world coordinates
    grid: DensityGrid  # the activated density (what .mrc / .npy exports hold), also for a visibility mesh
    level: float
    choice: LevelChoice | None  # how the automatic level was chosen (None: a given level)
    params: MeshParams
    seconds: float
    rate: float  # grid nodes per second measured


def extract(G, planes: torch.Tensor, params: MeshParams, progress: Callable[[float], None] | None = None,
            cancel: Callable[[], bool] | None = None, stage: Callable[[str], None] | None = None) -> MeshResult:
    """Grid (separable path) -> occlusion (visibility surface) -> level (given or automatic) -> mesh
    with colours. progress(fraction of the grid done); cancel() -> raises core.geometry.Cancelled
    between grid blocks; stage(name) at the start of each step ("grid", "occlusion", "level", "mesh")."""
    import time
    t0 = time.perf_counter()
    total = params.resolution ** 3
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(1.0, done[0] / total))

    def enter(name: str) -> None:
        if stage is not None:
            stage(name)

    with torch.no_grad():
        enter("grid")
        grid = separable_grid(G, planes, params.box, params.resolution, progress=step, cancel=cancel)
        t_grid = time.perf_counter() - t0
        if params.surface == "visibility":
            enter("occlusion")
        density, grid = grid, surface_grid(grid, params.surface, planes.device)
        choice = None
        level = params.level
        if level is None:
            enter("level")
            choice = surface_level(G, planes, grid, params.surface, cancel=cancel)
            level = choice.level
        if cancel is not None and cancel():
            from core.geometry import Cancelled
            raise Cancelled("extraction cancelled")
        enter("mesh")
        mesh = extract_mesh(grid, level, keep_components=params.keep_components,
                            smooth_iterations=params.smooth,
                            decimate=params.decimate if params.decimate < 1 else None,
                            color_field=generator_field(G, planes) if params.colors else None)
    return MeshResult(mesh, density, level, choice, params, time.perf_counter() - t0, total / max(t_grid, 1e-6))


class PreviewGrid:
    """The 64^3 grid (density or occlusion) of the current model/latent/box/surface, computed once (in a
    worker) and reused for every level change: a preview mesh is then only marching cubes on 64^3 (milliseconds)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.key: tuple | None = None
        self.grid: DensityGrid | None = None
        self.auto: LevelChoice | None = None

    def get(self, key: tuple) -> tuple[DensityGrid, LevelChoice | None] | None:
        with self._lock:
            return (self.grid, self.auto) if key == self.key and self.grid is not None else None

    def put(self, key: tuple, grid: DensityGrid, auto: LevelChoice | None) -> None:
        with self._lock:
            self.key, self.grid, self.auto = key, grid, auto


def preview_mesh(grid: DensityGrid, level: float):
    """A quick mesh of a preview grid (no cleanup, no colours); None when the level misses the grid."""
    try:
        return extract_mesh(grid, level, keep_components=0)
    except NoSurfaceError:
        return None


# --------------------------------------------------------------------------------------------------
# GL data and matrices


def vertex_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved float32 [V, 9] (position, normal, colour in 0..1) and uint32 [F*3] indices."""
    v = np.asarray(mesh.vertices, np.float32)
    n = np.asarray(mesh.vertex_normals, np.float32)
    colors = getattr(mesh.visual, "vertex_colors", None) if mesh.visual.kind == "vertex" else None
    if colors is None or len(colors) != len(v):
        c = np.full((len(v), 3), 0.8, np.float32)
    else:
        c = np.asarray(colors, np.float32)[:, :3] / 255.0
    return np.ascontiguousarray(np.concatenate([v, n, c], axis=1)), np.ascontiguousarray(
        np.asarray(mesh.faces, np.uint32).ravel())


def view_matrix(cams: Cameras) -> np.ndarray:
    """world -> camera (OpenGL: looking down -z) for the first camera: the inverse of cam2world."""
    c2w = cams.cam2world[0].double().cpu().numpy()
    return np.linalg.inv(c2w)


def projection_matrix(cams: Cameras, near: float | None = None, far: float | None = None) -> np.ndarray:
    """camera -> clip for a square image with the renderer's normalised intrinsics.

    make_rays sends pixel (u, v) in [0, 1] (v downwards) along d = ((u - cx)/fx, -(v - cy)/fy, -1),
    so a camera point (x, y, z) lands at u = cx + fx x/(-z), v = cy - fy y/(-z); in NDC (y up)
    x_ndc = 2 fx x/(-z) + 2 cx - 1 and y_ndc = 2 fy y/(-z) + 1 - 2 cy.
    """
    k = cams.intrinsics[0].double().cpu().numpy()
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    n = float(near if near is not None else max(1e-3, 0.5 * float(cams.near[0])))
    f = float(far if far is not None else 2.0 * float(cams.far[0]))
    return np.array([
        [2 * fx, 0.0, -(2 * cx - 1), 0.0],
        [0.0, 2 * fy, -(1 - 2 * cy), 0.0],
        [0.0, 0.0, -(f + n) / (f - n), -2 * f * n / (f - n)],
        [0.0, 0.0, -1.0, 0.0],
    ])


def project(points: np.ndarray, cams: Cameras) -> np.ndarray:
    """World points [N, 3] -> NDC [N, 3] with the viewport's matrices (tests, picking)."""
    m = projection_matrix(cams) @ view_matrix(cams)
    h = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ m.T
    return h[:, :3] / h[:, 3:4]


def export_paths(out_dir, stem: str, formats: list[str]) -> list:
    from pathlib import Path
    return [Path(out_dir) / f"{stem}.{f}" for f in formats]


def save_outputs(result: MeshResult, out_dir, stem: str, formats: list[str]) -> list:
    """Write the mesh / grid in each format (atomic writes through core.geometry.export)."""
    from pathlib import Path
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for f, path in zip(formats, export_paths(out_dir, stem, formats)):
        if f in export.MESH_FORMATS:
            export.save_mesh(result.mesh, path, f)
        elif f == "mrc":
            export.save_mrc_for_mesh(result.grid, path, result.params.surface, result.level)
        elif f == "npy":
            export.save_npy(result.grid, path)
        else:
            continue
        written.append(path)
    return written

