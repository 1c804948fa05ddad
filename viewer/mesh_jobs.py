"""Background mesh work for the viewer: the full extraction (progress, cancel) and the live preview.

Both run in daemon threads and publish through attributes the GUI thread polls each frame; the
GUI thread alone touches GL (it uploads finished meshes). The tri-planes come from the render
engine's cache (the same w as on screen) via `planes_fn`, computed under the job's own thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

import torch

from core.errors import UserError
from core.geometry import Cancelled

from . import meshing
from .meshing import MeshParams, MeshResult, PreviewGrid


class MeshJob:
    """One extraction in a thread: `progress` in [0, 1], `cancel()`, then `result` or `error`."""

    def __init__(self, G, planes_fn: Callable[[], torch.Tensor], params: MeshParams):
        self.G, self.planes_fn, self.params = G, planes_fn, params
        self.progress = 0.0
        self.stage = "queued"
        self.result: MeshResult | None = None
        self.error: str | None = None
        self.cancelled = False
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mesh-extract", daemon=True)
        self.started = time.monotonic()
        self.key: tuple | None = None  # (model uid, latent, box) the job was started for

    def start(self) -> MeshJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive() and self.stage != "queued"

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _progress(self, f: float) -> None:
        self.progress = f

    def _stage(self, name: str) -> None:
        self.stage = name

    def _run(self) -> None:
        try:
            self.stage = "grid"
            planes = self.planes_fn()
            self.result = meshing.extract(self.G, planes, self.params, self._progress, self._cancel.is_set,
                                          stage=self._stage)
            self.progress = 1.0
        except Cancelled:
            self.cancelled = True
            self.error = "cancelled"
        except UserError as e:
            self.error = str(e)
        except Exception as e:  # shown in the panel, never a crash
            traceback.print_exc()
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.stage = "done"


class PreviewWorker:
    """Keeps a 64^3 grid of the current model/latent/box and makes preview meshes from it.

    `request(key, G, planes_fn, box, level)` is cheap to call every frame: the grid is recomputed
    only when `key` (model, latent, box) changes, the mesh only when the level changes; the newest
    request wins. `mesh` / `mesh_key` hold the newest finished preview.
    """

    def __init__(self):
        self.cache = PreviewGrid()
        self.mesh = None
        self.mesh_key: tuple | None = None
        self.auto_level: float | None = None
        self.auto_surface: str | None = None  # the surface auto_level belongs to
        self.auto_describe: str = ""
        self.error: str | None = None
        self._want: tuple | None = None
        self._cv = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="mesh-preview", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy or self._want is not None

    def request(self, key: tuple, G, planes_fn, box, level: float | None, surface: str = "density") -> None:
        """level None = the automatic level of the preview grid; `surface` ("density" or "visibility")
        must be part of `key`."""
        with self._cv:
            if self.mesh_key == (key, level) or (self._want is not None and self._want[0] == (key, level)):
                return
            self._want = ((key, level), G, planes_fn, box, surface)
            self._cv.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread, waiting for a preview in progress (torch must not be mid-call at exit)."""
        with self._cv:
            self._closed = True
            self._want = None
            self._cv.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._want is None and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                want, self._want = self._want, None
                self._busy = True
            try:
                (key, level), G, planes_fn, box, surface = want
                cached = self.cache.get(key)
                if cached is None:
                    planes = planes_fn()
                    with torch.no_grad():
                        grid = meshing.surface_grid(meshing.separable_grid(G, planes, box, meshing.PREVIEW_RES),
                                                    surface, planes.device)
                        auto = meshing.surface_level(G, planes, grid, surface)
                    self.cache.put(key, grid, auto)
                    cached = (grid, auto)
                grid, auto = cached
                self.auto_level, self.auto_describe, self.auto_surface = auto.level, auto.describe(), surface
                lv = auto.level if level is None else level
                self.mesh = meshing.preview_mesh(grid, lv)
                self.error = None if self.mesh is not None else (
                    f"no surface at level {lv:.4g} (preview {meshing.surface_name(surface)} "
                    f"{grid.values.min():.3g} .. "
                    f"{grid.values.max():.3g})")
                self.mesh_key = (key, level)
            except Exception as e:
                traceback.print_exc()
                self.error = f"preview failed: {type(e).__name__}: {e}"
            finally:
                self._busy = False


class MeshController:
    """The app's mesh side: preview worker, extraction job, the GL pass and exports.

    GUI thread: `poll()` once per frame (from ViewerApp.frame_begin), `texture(size)` when the
    viewport shows the mesh, the panel's buttons call `start()`, `cancel()` and `export()`.
    """

    def __init__(self, app):
        self.app = app
        self.preview = PreviewWorker()
        self.job: MeshJob | None = None
        self.result: MeshResult | None = None
        self.result_key: tuple | None = None
        self.message: str | None = None
        self.export_message: str | None = None
        self.pass_ = None  # viewer.mesh_gl.MeshPass, made lazily on the GUI thread
        self.rate: float | None = None  # measured grid nodes per second
        self.panel_seen = -1  # the frame number the Mesh panel was last drawn in
        self.frame = 0

    # ------------------------------------------------------------------ keys and inputs

    def key(self) -> tuple | None:
        """(model uid, latent, box, surface): what a grid depends on."""
        app = self.app
        if app.model is None:
            return None
        box = meshing.crop_box(app.state.mesh, app.model.cfg.generator.cube_scale)
        return (app.model.uid, app.latent_spec(), box, app.state.mesh.surface)

    def planes_fn(self):
        model, latent = self.app.model, self.app.latent_spec()
        engine = self.app.engine
        return lambda: engine.planes(model, latent)[0]

    def level_for_preview(self) -> float | None:
        m = self.app.state.mesh
        return None if m.auto_level else meshing.level_of(m)

    # ------------------------------------------------------------------ per frame

    def poll(self) -> None:
        """Take finished work; ask for a preview only while the Mesh panel is on screen or the
        viewport shows the mesh (no background work for a hidden panel)."""
        app, m = self.app, self.app.state.mesh
        self.frame += 1
        panel_open = self.frame - self.panel_seen <= 2
        if app.model is not None and ((m.preview and panel_open) or m.show_mesh):
            key = self.key()
            self.preview.request(key, app.model.G, self.planes_fn(), key[2], self.level_for_preview(), key[3])
        job = self.job
        if job is not None and job.finished and job.stage == "done":
            self.job = None
            if job.result is not None:
                self.result, self.result_key = job.result, job.key
                r = job.result
                self.rate = r.rate
                how = r.choice.describe() if r.choice is not None else f"level {r.level:.4g}"
                self.message = (f"mesh {len(r.mesh.vertices)} vertices, {len(r.mesh.faces)} faces in "
                                f"{r.seconds:.1f} s; {how}")
            else:
                self.message = "extraction cancelled" if job.cancelled else f"extraction failed: {job.error}"

    @property
    def busy(self) -> bool:
        return self.job is not None or self.preview.busy

    def shown_mesh(self):
        """The extracted mesh when it belongs to the current model/latent/box, else the preview."""
        if self.result is not None and self.result_key == self.key():
            return self.result.mesh
        return self.preview.mesh

    # ------------------------------------------------------------------ actions

    def start(self) -> None:
        app = self.app
        if app.model is None:
            self.message = "no model loaded"
            return
        if self.job is not None:
            return
        params = meshing.params_from_state(app.state.mesh, app.model.cfg.generator.cube_scale)
        job = MeshJob(app.model.G, self.planes_fn(), params)
        job.key = self.key()
        self.message = None
        self.job = job.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def export(self, formats: list[str], stem: str | None = None) -> list:
        """Write the extracted mesh / grid (synchronous: the files are written atomically and fast)."""
        from .export import timestamped

        if self.result is None:
            self.export_message = "no extracted mesh: press Extract first"
            return []
        if not formats:
            self.export_message = "no format selected"
            return []
        out_dir = self.app.state.export.out_dir
        if stem is None:
            stem = timestamped(out_dir, "mesh", "").name
        try:
            written = meshing.save_outputs(self.result, out_dir, stem, formats)
        except (UserError, OSError) as e:
            self.export_message = f"export failed: {e}"
            return []
        self.export_message = "saved " + ", ".join(str(p) for p in written)
        return written

    # ------------------------------------------------------------------ GL (GUI thread)

    def texture(self, size: int) -> int | None:
        app = self.app
        if app.model is None:
            return None
        if self.pass_ is None:
            from .mesh_gl import MeshPass
            self.pass_ = MeshPass()
        mesh = self.shown_mesh()
        if mesh is None:
            self.pass_.clear()
        elif self.pass_.mesh_id != id(mesh):
            v, i = meshing.vertex_arrays(mesh)
            self.pass_.upload(v, i, id(mesh))
        cams = app.state.camera.camera.to_cameras(app.model.cfg.camera)
        return self.pass_.draw(meshing.view_matrix(cams), meshing.projection_matrix(cams), size,
                               self.background(), app.state.mesh.shading)

    def background(self) -> tuple[float, float, float]:
        from core.networks.generator import background_color

        app = self.app
        bg = app.view_spec().background
        t = background_color(app.model.cfg.render.background if bg is None else bg, "cpu", torch.float32)
        return tuple(float((c + 1) / 2) for c in t)

    def close(self) -> None:
        self.cancel()
        if self.job is not None:
            self.job.wait(30)
        self.preview.close()
        if self.pass_ is not None:
            self.pass_.delete()
            self.pass_ = None
