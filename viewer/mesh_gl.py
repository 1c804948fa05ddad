"""OpenGL for the viewport's mesh mode: a vertex/index buffer and an offscreen pass with depth,
drawn with shaders/mesh.vert + shaders/mesh.frag. GUI thread only (it owns the context).

The output texture has the same layout as DisplayPass's (row 0 = the image's top row), so the
viewport shows either with `imgui.image` and the same camera.
"""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL

from .gl import GLUnavailable, Texture, _restore_state, _save_state, build_program, read_framebuffer

SHADING_MODES = {"shaded": 0, "colors": 1}


class MeshPass:
    """Holds one uploaded mesh and draws it into a size x size texture."""

    def __init__(self):
        self.program = build_program("mesh.vert", "mesh.frag")
        self.vao = int(GL.glGenVertexArrays(1))
        self.vbo = int(GL.glGenBuffers(1))
        self.ibo = int(GL.glGenBuffers(1))
        self.fbo = int(GL.glGenFramebuffers(1))
        self.depth = int(GL.glGenRenderbuffers(1))
        self.target = Texture(linear=True)
        self.count = 0  # indices uploaded
        self.mesh_id: int | None = None  # id() of the uploaded mesh object
        self._loc = {n: GL.glGetUniformLocation(self.program, n) for n in ("u_view", "u_proj", "u_mode")}
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self.ibo)
        stride = 9 * 4
        for loc in range(3):
            GL.glEnableVertexAttribArray(loc)
            GL.glVertexAttribPointer(loc, 3, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(12 * loc))
        GL.glBindVertexArray(0)

    def upload(self, vertices: np.ndarray, indices: np.ndarray, mesh_id: int | None = None) -> None:
        """vertices [V, 9] float32 (position, normal, colour), indices uint32 [F * 3]."""
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, vertices.nbytes, vertices, GL.GL_STATIC_DRAW)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self.ibo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, indices.nbytes, indices, GL.GL_STATIC_DRAW)
        GL.glBindVertexArray(0)
        self.count = int(indices.size)
        self.mesh_id = mesh_id

    def clear(self) -> None:
        self.count, self.mesh_id = 0, None

    def _resize(self, size: int) -> None:
        if self.target.size == (size, size):
            return
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.target.id)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, size, size, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        self.target.size = (size, size)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.depth)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, size, size)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.target.id, 0)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self.depth)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise GLUnavailable(f"mesh framebuffer incomplete (status 0x{int(status):x})")

    def draw(self, view: np.ndarray, proj: np.ndarray, size: int, background: tuple[float, float, float],
             shading: str = "shaded") -> int:
        """Draw the uploaded mesh with 4x4 view/projection matrices (row-major numpy) into the output
        texture (size x size, cleared to `background` in 0..1); returns the texture id."""
        size = max(1, int(size))
        saved = _save_state()
        depth_was = GL.glIsEnabled(GL.GL_DEPTH_TEST)
        cull_was = GL.glIsEnabled(GL.GL_CULL_FACE)
        try:
            self._resize(size)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
            GL.glViewport(0, 0, size, size)
            GL.glDisable(GL.GL_BLEND)
            GL.glDisable(GL.GL_SCISSOR_TEST)
            GL.glDisable(GL.GL_CULL_FACE)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthFunc(GL.GL_LESS)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glClearColor(float(background[0]), float(background[1]), float(background[2]), 1.0)
            GL.glClearDepth(1.0)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
            if self.count:
                GL.glUseProgram(self.program)
                GL.glUniformMatrix4fv(self._loc["u_view"], 1, GL.GL_TRUE, np.asarray(view, np.float32))
                GL.glUniformMatrix4fv(self._loc["u_proj"], 1, GL.GL_TRUE, np.asarray(proj, np.float32))
                GL.glUniform1i(self._loc["u_mode"], SHADING_MODES.get(shading, 0))
                GL.glBindVertexArray(self.vao)
                GL.glDrawElements(GL.GL_TRIANGLES, self.count, GL.GL_UNSIGNED_INT, None)
        finally:
            (GL.glEnable if depth_was else GL.glDisable)(GL.GL_DEPTH_TEST)
            (GL.glEnable if cull_was else GL.glDisable)(GL.GL_CULL_FACE)
            _restore_state(saved)
        return self.target.id

    def read_pixels(self) -> np.ndarray:
        """The output texture as [H, W, 3] uint8, row 0 at the top (tests)."""
        return read_framebuffer(self.fbo, self.target.size)

    def delete(self) -> None:
        GL.glDeleteProgram(self.program)
        GL.glDeleteVertexArrays(1, [self.vao])
        GL.glDeleteBuffers(2, [self.vbo, self.ibo])
        GL.glDeleteFramebuffers(1, [self.fbo])
        GL.glDeleteRenderbuffers(1, [self.depth])
        self.target.delete()
