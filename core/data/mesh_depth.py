"""Exact depth of rasterised meshes, for `python -m core.dataset_tool render --depth`.

The depth of a pixel is the distance along its ray from the camera centre to the first surface (the
quantity the volume renderer's expected depth sum(w_i t_i) estimates), computed per fragment from
the perspective-correct interpolated world position, in float32. With supersampling a pixel's depth
is the box-filtered average over its subsamples with the background at the far bound, i.e. the
expected depth of an opaque object in front of an opaque far plane.

Written as `<image stem>_depth.png`, 16-bit, with near -> 0 and far -> 65535 (the convention of
core/data/depth.py, which the dataset loader inverts to [-1, 1)); `--depth-degrade` replaces the
exact map by a seeded imitation of a relative monocular estimate (core.data.depth.degrade_depth),
which is what 3DGP ("3D generation on ImageNet", ICLR 2023) trains with on real images.
"""

from __future__ import annotations

import numpy as np

from ..cameras import Cameras
from .depth import degrade_depth, encode_depth, metric_depth_to_uint16
from .mesh_render import MeshData, draw_view, egl_context

_VERT = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
out vec3 v_pos;
void main() {
    gl_Position = mvp * vec4(in_pos, 1.0);
    v_pos = in_pos;
}
"""
_FRAG = """
#version 330
uniform vec3 cam_pos;
in vec3 v_pos;
out float f_dist;
void main() {
    f_dist = length(v_pos - cam_pos);  // > 0 for every visible fragment; 0 marks the background
}
"""


class MeshDepthRenderer:
    """Renders the ray distance of MeshData from our Cameras (as core.data.mesh_render.MeshRenderer renders
    colour: same projection, same pixel centres)."""

    def __init__(self, resolution: int, supersample: int = 2):
        self.res, self.ss = int(resolution), int(supersample)
        self.ctx = egl_context()
        hi = self.res * self.ss
        self.fbo = self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer((hi, hi), 1, dtype="f4")],
                                        depth_attachment=self.ctx.depth_renderbuffer((hi, hi)))
        self.prog = self.ctx.program(vertex_shader=_VERT, fragment_shader=_FRAG)

    def render(self, md: MeshData, cams: Cameras) -> tuple[np.ndarray, np.ndarray]:
        """-> (surface [V, R, R] float64: the mean distance over the covered subsamples (0 where none),
        coverage [V, R, R] float64 in [0, 1]: the covered fraction of each pixel)."""

        vbo = self.ctx.buffer(np.ascontiguousarray(md.positions, dtype="f4").tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f", "in_pos")])
        extent = float(np.linalg.norm(md.positions, axis=1).max()) if len(md.positions) else 1.0
        hi = self.res * self.ss
        out = []
        try:
            for i in range(len(cams)):
                draw_view(self.ctx, self.fbo, self.prog, vao, cams, i, extent, 0.0)
                d = np.frombuffer(self.fbo.read(components=1, dtype="f4", alignment=1), dtype=np.float32)
                out.append(d.reshape(hi, hi)[::-1])  # GL rows run bottom -> top
        finally:
            vao.release()
            vbo.release()
        d = np.stack(out).astype(np.float64).reshape(len(cams), self.res, self.ss, self.res, self.ss)
        hit = d > 0
        count = hit.sum(axis=(2, 4))
        surface = np.where(count > 0, (d * hit).sum(axis=(2, 4)) / np.maximum(count, 1), 0.0)
        return surface, count / float(self.ss * self.ss)

    def release(self) -> None:
        self.fbo.release()
        self.prog.release()


def expected_depth(surface: np.ndarray, coverage: np.ndarray, far: float) -> np.ndarray:
    """The box-filtered depth of each pixel with the background at `far`."""
    return coverage * surface + (1 - coverage) * far


class MeshDepthWriter:
    """What `render --depth [--depth-degrade]` writes per view: 16-bit depth PNG bytes.

    near/far: the distances along the ray mapped to 0 and 65535 (the dataset's render.near/far).
    With `degrade`, view v of object k uses np.random.default_rng([seed, k, v]): deterministic and
    independent of which other objects were rendered.
    """

    def __init__(self, resolution: int, supersample: int, near: float, far: float, degrade: bool = False,
                 seed: int = 0):
        if not far > near:
            raise ValueError(f"far ({far}) must exceed near ({near})")
        self.renderer = MeshDepthRenderer(resolution, supersample)
        self.near, self.far, self.degrade, self.seed = float(near), float(far), bool(degrade), int(seed)

    def render(self, md: MeshData, cams: Cameras, object_index: int) -> list[bytes]:
        surface, coverage = self.renderer.render(md, cams)
        pngs = []
        for v in range(len(cams)):
            if self.degrade:
                rng = np.random.default_rng([self.seed, object_index, v])
                unit = (np.clip(surface[v], self.near, self.far) - self.near) / (self.far - self.near)
                d16, _ = degrade_depth(unit, coverage[v], rng)
            else:
                d16 = metric_depth_to_uint16(expected_depth(surface[v], coverage[v], self.far), self.near, self.far)
            pngs.append(encode_depth(d16))
        return pngs

    def meta(self) -> dict:
        """The record written to dataset.json's render.depth."""
        m = {"files": "<image stem>_depth.png, 16-bit greyscale, larger = farther",
             "near": self.near, "far": self.far,
             "encoding": "v = round((t - near) / (far - near) * 65535), t = distance along the ray from the "
                         "camera centre, box-filtered over the supersamples; background = 65535 (far)",
             "degraded": self.degrade}
        if self.degrade:
            m["degrade"] = (f"per view (rng [seed {self.seed}, object, view]): normalised to [0, 1] over the "
                            "foreground, u -> low + (high - low) u^gamma, Gaussian blur, additive noise; "
                            "background = 65535; see core.data.depth.degrade_depth")
        return m

    def release(self) -> None:
        self.renderer.release()
