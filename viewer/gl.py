"""OpenGL (3.3 core profile, PyOpenGL) for the viewer: textures and the display pass.

The render arrives as a small texture (RGB8, or R32F for depth/opacity). `DisplayPass` draws it
with shaders/fullscreen.vert + shaders/display.frag into an offscreen texture the size of the
viewport (linear upscaling, colour table for scalars); the GUI shows that texture with
`imgui.image`. Every call here must run on the GUI thread, which owns the context. The pass
saves and restores the GL state that Dear ImGui's renderer relies on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from OpenGL import GL

SHADER_DIR = Path(__file__).resolve().parent.parent / "shaders"


class GLUnavailable(RuntimeError):
    """The context is missing or too old (the message says what was found)."""


def gl_version() -> tuple[int, int, str]:
    """(major, minor, description) of the current context."""
    text = GL.glGetString(GL.GL_VERSION)
    renderer = GL.glGetString(GL.GL_RENDERER)
    desc = f"{(text or b'?').decode(errors='replace')} on {(renderer or b'?').decode(errors='replace')}"
    try:
        major, minor = (int(x) for x in (text or b"0.0").decode().split(" ")[0].split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    return major, minor, desc


def require_gl33() -> str:
    """Raise GLUnavailable unless the current context is OpenGL 3.3+; returns its description."""
    major, minor, desc = gl_version()
    if (major, minor) < (3, 3):
        raise GLUnavailable(f"OpenGL 3.3 or newer is needed, this display offers {desc}")
    return desc


def load_shader(name: str) -> str:
    """Source of shaders/<name>."""
    return (SHADER_DIR / name).read_text(encoding="utf-8")


def _compile(kind: int, source: str, name: str) -> int:
    shader = GL.glCreateShader(kind)
    GL.glShaderSource(shader, source)
    GL.glCompileShader(shader)
    if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
        log = GL.glGetShaderInfoLog(shader).decode(errors="replace")
        GL.glDeleteShader(shader)
        raise GLUnavailable(f"shader {name} failed to compile: {log.strip()}")
    return shader


def build_program(vert: str, frag: str) -> int:
    """Compile and link shaders/<vert> + shaders/<frag> into a program."""
    vs = _compile(GL.GL_VERTEX_SHADER, load_shader(vert), vert)
    fs = _compile(GL.GL_FRAGMENT_SHADER, load_shader(frag), frag)
    prog = GL.glCreateProgram()
    GL.glAttachShader(prog, vs)
    GL.glAttachShader(prog, fs)
    GL.glLinkProgram(prog)
    GL.glDeleteShader(vs)
    GL.glDeleteShader(fs)
    if not GL.glGetProgramiv(prog, GL.GL_LINK_STATUS):
        log = GL.glGetProgramInfoLog(prog).decode(errors="replace")
        raise GLUnavailable(f"shader program {vert}+{frag} failed to link: {log.strip()}")
    return prog


class Texture:
    """A 2D texture holding [H, W, 3] uint8 (RGB8) or [H, W] float32 (R32F) arrays."""

    def __init__(self, linear: bool = True):
        self.id = int(GL.glGenTextures(1))
        self.size = (0, 0)
        self.scalar = False
        f = GL.GL_LINEAR if linear else GL.GL_NEAREST
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, f)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, f)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)

    def upload(self, array: np.ndarray) -> None:
        """Replace the contents; row 0 of the array is texture row 0 (shown at the top by imgui)."""
        a = np.ascontiguousarray(array)
        h, w = a.shape[:2]
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        if a.ndim == 2:
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_R32F, w, h, 0, GL.GL_RED, GL.GL_FLOAT, a.astype(np.float32))
            self.scalar = True
        else:
            if a.dtype != np.uint8 or a.shape[2] != 3:
                raise ValueError(f"expected [H, W, 3] uint8, got {a.shape} {a.dtype}")
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGB8, w, h, 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, a)
            self.scalar = False
        self.size = (w, h)

    def delete(self) -> None:
        GL.glDeleteTextures([self.id])


class FullscreenPass:
    """A fragment shader drawn over a size x size offscreen texture (shaders/fullscreen.vert + `frag`),
    with a colour table for scalars: what the display pass and the baked preview share."""

    def __init__(self, frag: str, uniforms: tuple[str, ...]):
        self.program = build_program("fullscreen.vert", frag)
        self.vao = int(GL.glGenVertexArrays(1))
        self.fbo = int(GL.glGenFramebuffers(1))
        self.target = Texture(linear=True)
        self.lut = Texture(linear=False)
        self.lut_name = ""
        self._loc = {n: GL.glGetUniformLocation(self.program, n) for n in uniforms}

    def set_lut(self, name: str, table: np.ndarray) -> None:
        """Upload a [256, 3] uint8 colour table (skipped when `name` is already loaded)."""
        if name != self.lut_name:
            self.lut.upload(table.reshape(1, 256, 3))
            self.lut_name = name

    def _resize(self, size: int) -> None:
        if self.target.size == (size, size):
            return
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.target.id)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, size, size, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        self.target.size = (size, size)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.target.id, 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise GLUnavailable(f"offscreen framebuffer incomplete (status 0x{int(status):x})")

    def _begin(self, size: int) -> None:
        """Bind the size x size target and the program for a fullscreen draw (inside _save_state)."""
        self._resize(size)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glViewport(0, 0, size, size)
        GL.glDisable(GL.GL_BLEND)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glUseProgram(self.program)

    def _finish(self) -> None:
        GL.glBindVertexArray(self.vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)

    def read_pixels(self) -> np.ndarray:
        """The output texture as [H, W, 3] uint8, row 0 at the top (tests)."""
        return read_framebuffer(self.fbo, self.target.size)

    def delete(self) -> None:
        GL.glDeleteProgram(self.program)
        GL.glDeleteVertexArrays(1, [self.vao])
        GL.glDeleteFramebuffers(1, [self.fbo])
        self.target.delete()
        self.lut.delete()


class DisplayPass(FullscreenPass):
    """Draws a render texture into a viewport-sized texture through shaders/display.frag."""

    def __init__(self):
        super().__init__("display.frag", ("u_source", "u_lut", "u_scalar", "u_range", "u_reverse"))

    def draw(self, source: Texture, size: int, value_range: tuple[float, float] = (0.0, 1.0),
             reverse: bool = False) -> int:
        """Render `source` into the size x size output texture; returns the output's texture id."""
        size = max(1, int(size))
        saved = _save_state()
        try:
            self._begin(size)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, source.id)
            GL.glActiveTexture(GL.GL_TEXTURE1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self.lut.id)
            GL.glUniform1i(self._loc["u_source"], 0)
            GL.glUniform1i(self._loc["u_lut"], 1)
            GL.glUniform1i(self._loc["u_scalar"], int(source.scalar))
            GL.glUniform2f(self._loc["u_range"], float(value_range[0]), float(value_range[1]))
            GL.glUniform1i(self._loc["u_reverse"], int(reverse))
            self._finish()
        finally:
            _restore_state(saved)
        return self.target.id


def read_framebuffer(fbo: int, size: tuple[int, int]) -> np.ndarray:
    """An RGB framebuffer as [H, W, 3] uint8, in GL's row order; the caller's GL state is kept."""
    w, h = size
    saved = _save_state()
    try:
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
    finally:
        _restore_state(saved)
    return np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()


def _save_state() -> dict:
    return {
        "fbo": GL.glGetIntegerv(GL.GL_FRAMEBUFFER_BINDING),
        "viewport": GL.glGetIntegerv(GL.GL_VIEWPORT),
        "program": GL.glGetIntegerv(GL.GL_CURRENT_PROGRAM),
        "vao": GL.glGetIntegerv(GL.GL_VERTEX_ARRAY_BINDING),
        "active": GL.glGetIntegerv(GL.GL_ACTIVE_TEXTURE),
        "blend": GL.glIsEnabled(GL.GL_BLEND),
        "scissor": GL.glIsEnabled(GL.GL_SCISSOR_TEST),
    }


def _restore_state(s: dict) -> None:
    GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, int(s["fbo"]))
    GL.glViewport(*[int(v) for v in s["viewport"]])
    GL.glUseProgram(int(s["program"]))
    GL.glBindVertexArray(int(s["vao"]))
    GL.glActiveTexture(int(s["active"]))
    (GL.glEnable if s["blend"] else GL.glDisable)(GL.GL_BLEND)
    (GL.glEnable if s["scissor"] else GL.glDisable)(GL.GL_SCISSOR_TEST)
