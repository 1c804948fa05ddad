"""OpenGL for the baked preview: a latent's baked colour + density (core/render/bake.py) as a 3D
texture, ray-marched per pixel by shaders/volume.frag with the render camera's own rays into an
offscreen texture the size of the viewport (row 0 = the image's top row, as DisplayPass's).

`BakedPreviewPass.upload(field)` puts a bake on the GPU (the arrays go up as they are: no copy or
transpose on the GUI thread); `draw(cams, size, ...)` renders a view in any of the viewer's modes
(RGB, depth, opacity, normals; scalars through the same colour table as the display shader).
Every call here must run on the GUI thread, which owns the context.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np
from OpenGL import GL

from core.cameras import Cameras
from core.render.bake import SOFTPLUS, BakedField

from .gl import FullscreenPass, _restore_state, _save_state

MODES = {"rgb": 0, "depth": 1, "opacity": 2, "normals": 3}
STEP_TEXELS = 1.0  # marching step in node spacings (finer steps change the picture by < 0.1 dB)
STOP_TRANSMITTANCE = 1e-3
TAIL = (0.1, 0.01)  # transmittances below which the step doubles, then quadruples
FAR_DELTA = {True: 1e10, False: 1e-3}  # the last interval, as core.kernels' compositing
_UNIFORMS = ("u_field", "u_occ", "u_lut", "u_softplus", "u_origin", "u_rot", "u_intr", "u_near_far", "u_lo",
             "u_spacing", "u_res", "u_cell", "u_cells", "u_box_lo", "u_box_hi", "u_step", "u_tail", "u_stop",
             "u_far_delta", "u_bg", "u_mode", "u_range", "u_reverse")


def _texture3d(linear: bool) -> int:
    tex = int(GL.glGenTextures(1))
    f = GL.GL_LINEAR if linear else GL.GL_NEAREST
    GL.glBindTexture(GL.GL_TEXTURE_3D, tex)
    GL.glTexParameteri(GL.GL_TEXTURE_3D, GL.GL_TEXTURE_MIN_FILTER, f)
    GL.glTexParameteri(GL.GL_TEXTURE_3D, GL.GL_TEXTURE_MAG_FILTER, f)
    for wrap in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T, GL.GL_TEXTURE_WRAP_R):
        GL.glTexParameteri(GL.GL_TEXTURE_3D, wrap, GL.GL_CLAMP_TO_EDGE)
    GL.glTexParameteri(GL.GL_TEXTURE_3D, GL.GL_TEXTURE_MAX_LEVEL, 0)
    return tex


def occupied_bounds(field: BakedField) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """World bounding box of the occupied cells; a point far away when none is occupied."""
    idx = np.argwhere(field.occupancy > 0)
    if len(idx) == 0:
        return (1e6, 1e6, 1e6), (1e6, 1e6, 1e6)
    cell = field.size / field.occupancy_res
    lo = np.asarray(field.lo) + idx.min(0) * cell
    hi = np.asarray(field.lo) + (idx.max(0) + 1) * cell
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


class BakedPreviewPass(FullscreenPass):
    """Holds one uploaded bake and draws views of it into a size x size texture."""

    def __init__(self):
        super().__init__("volume.frag", _UNIFORMS)
        self.field_tex = _texture3d(linear=True)
        self.occ_tex = _texture3d(linear=False)  # the bake's empty-space distances
        self.field: BakedField | None = None  # the uploaded bake (its metadata: the arrays are on the GPU)
        self.key: object = None  # what the caller uploaded (e.g. model uid + latent)
        self.upload_s = 0.0
        self._bounds = ((1e6,) * 3, (1e6,) * 3)

    def upload(self, field: BakedField, key: object = None) -> float:
        """Put a bake on the GPU (RGBA16F field, R8 distances to occupied cells); returns the seconds."""
        t0 = time.perf_counter()
        rgba = field.rgba if field.rgba.flags.c_contiguous else np.ascontiguousarray(field.rgba)
        occ = np.ascontiguousarray(field.distance, dtype=np.uint8)
        r, n = field.res, field.occupancy_res
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glBindTexture(GL.GL_TEXTURE_3D, self.field_tex)  # [x, y, z] arrays: texture s = z, t = y, r = x
        GL.glTexImage3D(GL.GL_TEXTURE_3D, 0, GL.GL_RGBA16F, r, r, r, 0, GL.GL_RGBA, GL.GL_HALF_FLOAT,
                        rgba.ctypes.data_as(ctypes.c_void_p))  # a pointer: PyOpenGL would convert an array
        GL.glBindTexture(GL.GL_TEXTURE_3D, self.occ_tex)
        GL.glTexImage3D(GL.GL_TEXTURE_3D, 0, GL.GL_R8, n, n, n, 0, GL.GL_RED, GL.GL_UNSIGNED_BYTE, occ)
        GL.glBindTexture(GL.GL_TEXTURE_3D, 0)
        self.field, self.key = field, key
        self._bounds = occupied_bounds(field)
        self.upload_s = time.perf_counter() - t0
        return self.upload_s

    def draw(self, cams: Cameras, size: int, mode: str = "rgb", background: tuple[float, float, float] = (1, 1, 1),
             far_opaque: bool = False, value_range: tuple[float, float] = (0.0, 1.0), reverse: bool = False,
             step_texels: float = STEP_TEXELS, tail: tuple[float, float] = TAIL) -> int:
        """Render the uploaded bake from cams[0] into the size x size output texture; returns its id.

        background: RGB in [0, 1]; far_opaque: the model's render.far_opaque; value_range/reverse:
        the colour table's mapping for depth and opacity (set_lut first)."""
        if self.field is None:
            raise RuntimeError("no bake uploaded")
        f = self.field
        size = max(1, int(size))
        c2w = cams.cam2world[0].double().cpu().numpy()
        k = cams.intrinsics[0].double().cpu().numpy()
        saved = _save_state()
        try:
            self._begin(size)
            loc = self._loc
            for unit, (target, tex, name) in enumerate(((GL.GL_TEXTURE_3D, self.field_tex, "u_field"),
                                                        (GL.GL_TEXTURE_3D, self.occ_tex, "u_occ"),
                                                        (GL.GL_TEXTURE_2D, self.lut.id, "u_lut"))):
                GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
                GL.glBindTexture(target, tex)
                GL.glUniform1i(loc[name], unit)
            GL.glUniform1i(loc["u_softplus"], int(f.density == SOFTPLUS))
            GL.glUniform3f(loc["u_origin"], *(float(v) for v in c2w[:3, 3]))
            GL.glUniformMatrix3fv(loc["u_rot"], 1, GL.GL_TRUE, np.asarray(c2w[:3, :3], np.float32))
            GL.glUniform4f(loc["u_intr"], float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))
            GL.glUniform2f(loc["u_near_far"], float(cams.near[0]), float(cams.far[0]))
            GL.glUniform3f(loc["u_lo"], *f.lo)
            GL.glUniform1f(loc["u_spacing"], f.spacing)
            GL.glUniform1f(loc["u_res"], float(f.res))
            GL.glUniform1f(loc["u_cell"], f.size / f.occupancy_res)
            GL.glUniform1i(loc["u_cells"], f.occupancy_res)
            GL.glUniform3f(loc["u_box_lo"], *self._bounds[0])
            GL.glUniform3f(loc["u_box_hi"], *self._bounds[1])
            GL.glUniform1f(loc["u_step"], f.spacing * step_texels)
            GL.glUniform2f(loc["u_tail"], float(tail[0]), float(tail[1]))
            GL.glUniform1f(loc["u_stop"], STOP_TRANSMITTANCE)
            GL.glUniform1f(loc["u_far_delta"], FAR_DELTA[bool(far_opaque)])
            GL.glUniform3f(loc["u_bg"], *(float(v) for v in background))
            GL.glUniform1i(loc["u_mode"], MODES[mode])
            GL.glUniform2f(loc["u_range"], float(value_range[0]), float(value_range[1]))
            GL.glUniform1i(loc["u_reverse"], int(reverse))
            self._finish()
        finally:
            _restore_state(saved)
        return self.target.id

    def delete(self) -> None:
        GL.glDeleteTextures([self.field_tex, self.occ_tex])
        super().delete()
        self.field = None
