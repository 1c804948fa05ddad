"""Rasterising coloured meshes offscreen (OpenGL through EGL, no display) with our camera convention.

Meshes are loaded with trimesh (.obj, .off, .ply, .glb, .gltf, .stl); colours come from what trimesh
gives (vertex or face colours, a material's colour, a texture sampled at the vertices) or, for
pybullet's URDF objects, the <color rgba> of a .urdf beside the mesh that names it. Shading is
Lambert + ambient from a light fixed in the world (as in core.data.synthetic), so that views agree
with each other like the generator's view-independent colours.

Cameras are ours (OpenGL cam2world, normalised intrinsics): the projection below maps the camera
point (x, y, z), z < 0, to the image point u = cx + fx x / -z (left -> right), v = cy - fy y / -z
(top -> bottom), the same pinhole that core.render.rays.make_rays casts rays through.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..cameras import Cameras
from ..errors import UserError
from .synthetic import LIGHT

MESH_EXTS = (".obj", ".off", ".ply", ".glb", ".gltf", ".stl")
INSTALL_HINT = ("offscreen rendering needs EGL and moderngl: apt-get install -y libegl1 libegl-mesa0 "
                "libgl1-mesa-dri libgles2 && pip install moderngl trimesh")
DEFAULT_GREY = (0.7, 0.7, 0.7)

_VERT = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_color;
out vec3 v_pos;
out vec3 v_normal;
out vec3 v_color;
void main() {
    gl_Position = mvp * vec4(in_pos, 1.0);
    v_pos = in_pos;
    v_normal = in_normal;
    v_color = in_color;
}
"""
_FRAG = """
#version 330
uniform vec3 cam_pos;
uniform vec3 light_dir;
uniform float ambient;
in vec3 v_pos;
in vec3 v_normal;
in vec3 v_color;
out vec4 f_color;
void main() {
    vec3 n = normalize(v_normal);
    if (dot(n, cam_pos - v_pos) < 0.0) n = -n;  // two-sided: face the viewer
    float lambert = max(dot(n, light_dir), 0.0);
    f_color = vec4(v_color * (ambient + (1.0 - ambient) * lambert), 1.0);
}
"""

_CTX = None


def egl_context():
    """One moderngl context per process on EGL (no display needed); UserError saying what to install."""
    global _CTX
    if _CTX is None:
        try:
            import moderngl
        except ImportError:
            raise UserError(INSTALL_HINT + " (moderngl is not installed)") from None
        try:
            _CTX = moderngl.create_standalone_context(backend="egl", require=330)
        except Exception as e:  # noqa: BLE001 - any driver failure means the same fix
            raise UserError(f"{INSTALL_HINT} (EGL context failed: {str(e).splitlines()[0] if str(e) else e!r})") from None
    return _CTX


# --------------------------------------------------------------------------------------------------
# Meshes


@dataclass
class MeshData:
    """Triangle soup: three rows per triangle."""

    positions: np.ndarray  # [T * 3, 3] float32, world
    normals: np.ndarray  # [T * 3, 3] float32, unit
    colors: np.ndarray  # [T * 3, 3] float32 in [0, 1]


def _urdf_color(path: Path) -> tuple[float, float, float] | None:
    """The <color rgba> of a .urdf beside the mesh whose <mesh filename> names it (pybullet objects)."""
    for urdf in sorted(path.parent.glob("*.urdf")):
        try:
            text = urdf.read_text(errors="replace")
        except OSError:
            continue
        if path.name not in text:
            continue
        m = re.search(r'<color\s+rgba\s*=\s*"([^"]+)"', text)
        if m:
            vals = [float(x) for x in m.group(1).split()[:3]]
            if len(vals) == 3:
                return tuple(vals)  # type: ignore[return-value]
    return None


def _corner_colors(mesh, fallback: tuple[float, float, float]) -> np.ndarray:
    """trimesh.Trimesh -> [F, 3, 3] float colours per triangle corner."""
    vis = mesh.visual
    try:
        if getattr(vis, "kind", None) == "texture":
            vis = vis.to_color()
        kind = getattr(vis, "kind", None)
        if kind == "face":
            return np.asarray(vis.face_colors, dtype=np.float32)[:, None, :3].repeat(3, axis=1) / 255.0
        if kind == "vertex":
            return np.asarray(vis.vertex_colors, dtype=np.float32)[mesh.faces][..., :3] / 255.0
    except Exception as e:  # noqa: BLE001 - an odd material: fall back to one colour
        print(f"warning: colours of a mesh part ignored ({e})", file=sys.stderr)
    return np.broadcast_to(np.asarray(fallback, dtype=np.float32), (len(mesh.faces), 3, 3)).copy()


def _soup(mesh, fallback: tuple[float, float, float], crease_deg: float = 35.0) -> MeshData:
    """Smooth normals except across creases sharper than crease_deg (then the face normal)."""
    faces = np.asarray(mesh.faces)
    fn = np.asarray(mesh.face_normals, dtype=np.float32)[:, None, :]  # [F, 1, 3]
    vn = np.asarray(mesh.vertex_normals, dtype=np.float32)[faces]  # [F, 3, 3]
    n = np.where((vn * fn).sum(-1, keepdims=True) > np.cos(np.radians(crease_deg)), vn, fn)
    return MeshData(np.asarray(mesh.vertices, dtype=np.float32)[faces].reshape(-1, 3),
                    n.reshape(-1, 3).astype(np.float32), _corner_colors(mesh, fallback).reshape(-1, 3))


def mesh_to_data(mesh_or_scene, fallback: tuple[float, float, float] = DEFAULT_GREY) -> MeshData:
    """A trimesh.Trimesh or trimesh.Scene (transforms applied) -> one triangle soup."""
    import trimesh

    if isinstance(mesh_or_scene, trimesh.Scene):
        parts = [g for g in mesh_or_scene.dump() if isinstance(g, trimesh.Trimesh)]
    else:
        parts = [mesh_or_scene] if isinstance(mesh_or_scene, trimesh.Trimesh) else []
    parts = [p for p in parts if len(p.faces) > 0]
    if not parts:
        raise ValueError("no triangles")
    soups = [_soup(p, fallback) for p in parts]
    return MeshData(*(np.concatenate([getattr(s, k) for s in soups]) for k in ("positions", "normals", "colors")))


def load_mesh(path: str | Path) -> MeshData:
    """Read a mesh file into a triangle soup; UserError naming the file if it cannot be read."""
    try:
        import trimesh
    except ImportError:
        raise UserError("reading meshes needs trimesh: pip install trimesh") from None
    path = Path(path)
    try:
        loaded = trimesh.load(str(path), process=False)
        return mesh_to_data(loaded, _urdf_color(path) or DEFAULT_GREY)
    except Exception as e:  # noqa: BLE001 - trimesh raises many kinds
        raise UserError(f"cannot read mesh '{path}': {e}") from None


Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x, y, z) -> (x, z, -y)


def normalize_mesh(md: MeshData, object_radius: float, up: str = "y") -> tuple[MeshData, dict]:
    """Centre the bounding box at the origin, fit it in the unit cube (longest side 1), then scale so
    the farthest vertex is `object_radius` from the origin. Returns the mesh and what was done."""
    rot = Z_UP_TO_Y_UP if up == "z" else np.eye(3)
    p = md.positions.astype(np.float64) @ rot.T
    lo, hi = p.min(0), p.max(0)
    centre = (lo + hi) / 2
    side = float((hi - lo).max())
    if not np.isfinite(side) or side <= 0:
        raise ValueError("degenerate mesh (zero size)")
    unit = (p - centre) / side  # inside [-0.5, 0.5]^3
    s = object_radius / float(np.linalg.norm(unit, axis=1).max())
    out = MeshData((unit * s).astype(np.float32), (md.normals @ rot.T).astype(np.float32), md.colors)
    return out, {"bbox_center": centre.tolist(), "unit_cube_scale": 1 / side, "fit_scale": s}


# --------------------------------------------------------------------------------------------------
# Rendering


def draw_view(ctx, fbo, prog, vao, cams: Cameras, i: int, extent: float, clear: float) -> None:
    """Draw a mesh (vao of prog, whose `mvp` and `cam_pos` uniforms are set here) from camera i into fbo
    with depth testing and no culling, cleared to `clear`; the clip planes enclose the mesh's extent."""
    import moderngl

    c2w = cams.cam2world[i].double().numpy()
    dist = float(np.linalg.norm(c2w[:3, 3]))
    znear = max(1e-3, (dist - extent) * 0.5)
    zfar = dist + extent * 2 + 1e-2
    mvp = projection_matrix(cams.intrinsics[i].double().numpy(), znear, zfar) @ np.linalg.inv(c2w)
    prog["mvp"].write(mvp.T.astype("f4").tobytes())  # GLSL matrices are column-major
    prog["cam_pos"].value = tuple(c2w[:3, 3].tolist())
    fbo.use()
    ctx.enable(moderngl.DEPTH_TEST)
    ctx.disable(moderngl.CULL_FACE)
    fbo.clear(clear, clear, clear, clear, depth=1.0)
    vao.render(moderngl.TRIANGLES)


def projection_matrix(k: np.ndarray, znear: float, zfar: float) -> np.ndarray:
    """Normalised intrinsics [3, 3] -> OpenGL clip-from-camera matrix [4, 4] (our pinhole, y up in NDC)."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    return np.array([[2 * fx, 0, 1 - 2 * cx, 0],
                     [0, 2 * fy, 2 * cy - 1, 0],
                     [0, 0, -(zfar + znear) / (zfar - znear), -2 * zfar * znear / (zfar - znear)],
                     [0, 0, -1, 0]], dtype=np.float64)


class MeshRenderer:
    """Renders MeshData from our Cameras to [V, R, R, 3] uint8 on white, supersampled for antialiasing."""

    def __init__(self, resolution: int, supersample: int = 2, ambient: float = 0.35):
        self.res, self.ss = int(resolution), int(supersample)
        self.ctx = egl_context()
        hi = self.res * self.ss
        self.fbo = self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer((hi, hi), 4)],
                                        depth_attachment=self.ctx.depth_renderbuffer((hi, hi)))
        self.prog = self.ctx.program(vertex_shader=_VERT, fragment_shader=_FRAG)
        light = np.asarray(LIGHT, dtype=np.float64)
        self.prog["light_dir"].value = tuple((light / np.linalg.norm(light)).tolist())
        self.prog["ambient"].value = float(ambient)

    def render(self, md: MeshData, cams: Cameras) -> np.ndarray:

        data = np.concatenate([md.positions, md.normals, md.colors], axis=1).astype("f4")  # [T*3, 9]
        vbo = self.ctx.buffer(data.tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_color")])
        extent = float(np.linalg.norm(md.positions, axis=1).max()) if len(md.positions) else 1.0
        hi = self.res * self.ss
        out = []
        try:
            for i in range(len(cams)):
                draw_view(self.ctx, self.fbo, self.prog, vao, cams, i, extent, 1.0)
                img = np.frombuffer(self.fbo.read(components=3, alignment=1), dtype=np.uint8).reshape(hi, hi, 3)
                out.append(img[::-1])  # GL rows run bottom -> top
        finally:
            vao.release()
            vbo.release()
        imgs = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()  # [V, 3, hi, hi]
        if self.ss > 1:
            imgs = F.avg_pool2d(imgs, self.ss)  # box filter over the supersamples
        return imgs.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def release(self) -> None:
        self.fbo.release()
        self.prog.release()


def find_meshes(folder: str | Path) -> list[Path]:
    """Mesh files under a folder (recursively, sorted)."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"mesh folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MESH_EXTS)
