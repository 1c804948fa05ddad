"""Writers for meshes (.ply binary with colours and normals, .obj, .glb) and density grids
(.mrc float32 with voxel size/origin in world units and a label naming the density, .npy).
Every file goes through atomic_write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import trimesh

from ..errors import UserError
from ..fileio import atomic_write
from .grid import DensityGrid

MESH_FORMATS = ("ply", "obj", "glb")
GRID_FORMATS = ("mrc", "npy")
FORMATS = MESH_FORMATS + GRID_FORMATS


def parse_formats(text: str) -> list[str]:
    fmts = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise UserError(f"unknown format(s) {', '.join(bad) or text!r}: choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(fmts))


def mesh_bytes(mesh: trimesh.Trimesh, fmt: str) -> bytes:
    if fmt == "ply":
        return trimesh.exchange.ply.export_ply(mesh, encoding="binary", vertex_normal=True,
                                               include_attributes=False)
    if fmt == "obj":
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=True, include_color=True,
                                               include_texture=False, write_texture=False)
        return text.encode("utf-8")
    if fmt == "glb":
        return trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh), include_normals=True)
    raise UserError(f"unknown mesh format '{fmt}' ({', '.join(MESH_FORMATS)})")


def save_mesh(mesh: trimesh.Trimesh, path: str | os.PathLike, fmt: str | None = None) -> None:
    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    data = mesh_bytes(mesh, fmt)
    atomic_write(path, lambda f: f.write(data))


GRID_KINDS = {  # the .mrc label of each DensityGrid kind
    "activated": "activated density sigma = softplus(raw + shift)",
    "raw": "raw density (decoder output before shift and softplus)",
    "occlusion": "occlusion 1 - max transmittance from outside, 26 directions",
}


def mrc_bytes(grid: DensityGrid, level: float | None = None, extra_label: str | None = None) -> bytes:
    """float32 (mode 2) volume; MRC's data order is [z, y, x], voxel size = grid spacing, origin =
    world position of voxel (0, 0, 0); nstart = 0. Labels say which density it holds."""
    import mrcfile

    with tempfile.TemporaryDirectory(prefix="epigraf-mrc-") as tmp:
        path = Path(tmp) / "grid.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(np.ascontiguousarray(grid.values.transpose(2, 1, 0), dtype=np.float32))
            sp = grid.spacing
            mrc.voxel_size = (float(sp[0]), float(sp[1]), float(sp[2]))
            o = grid.origin
            mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = float(o[0]), float(o[1]), float(o[2])
            mrc.header.nxstart = mrc.header.nystart = mrc.header.nzstart = 0
            what = GRID_KINDS.get(grid.kind, grid.kind)
            labels = [f"EpiGRAF Studio: {what}", "world units; origin = voxel (0,0,0) centre"]
            if level is not None:
                labels.append(f"iso-level used for the mesh: {level:.6g}")
            if extra_label:
                labels.append(extra_label)
            for text in labels[:10]:
                mrc.add_label(text[:80])
            mrc.update_header_stats()
        data = path.read_bytes()
    return data


def save_mrc(grid: DensityGrid, path: str | os.PathLike, level: float | None = None,
             extra_label: str | None = None) -> None:
    data = mrc_bytes(grid, level, extra_label)
    atomic_write(path, lambda f: f.write(data))


def save_mrc_for_mesh(grid: DensityGrid, path: str | os.PathLike, surface: str, level: float) -> None:
    """The density volume behind a mesh: its iso-level in the header labels when the mesh is the
    density's own iso-surface; for a visibility mesh (core.geometry.visibility) a label with the
    occlusion level instead, since that level is not a density."""
    if surface == "visibility":
        save_mrc(grid, path, None, extra_label=f"mesh: visibility surface at occlusion {level:.6g}")
    else:
        save_mrc(grid, path, level)


def save_npy(grid: DensityGrid, path: str | os.PathLike) -> None:
    """The [x, y, z] float32 grid as written by np.save (origin/spacing are not stored: see .mrc)."""
    atomic_write(path, lambda f: np.save(f, grid.values, allow_pickle=False))


def save(obj, path: str | os.PathLike, **kwargs) -> None:
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt in MESH_FORMATS:
        save_mesh(obj, path, fmt)
    elif fmt == "mrc":
        save_mrc(obj, path, **kwargs)
    elif fmt == "npy":
        save_npy(obj, path)
    else:
        raise UserError(f"unknown format '.{fmt}' ({', '.join(FORMATS)})")
