"""The viewer application: its state, workers and GL objects, and the per-frame glue.

Threads: the GUI thread (this file, the panels, viewer/gl.py) owns the window and the GL context
and never runs the network (it only draws with GL, the baked preview included); `RenderWorker`
renders (latest request wins) and, in its idle time, bakes the latent for the GL preview shown
while the camera moves (viewer/bake_jobs.py); `ModelLoader` opens models; export jobs render
videos. Each frame (viewer/runner.py): the app takes finished work (model,
render, thumbnails) and advances animations, the runner runs the panels' hooks (shortcuts, the
training job, the file dialog) and draws the panels, then the app submits a render request if what
should be on screen changed. Panels see the app through `viewer.app_api.ViewerApi`; this module
imports none of them. New panels plug in as more entries of `viewer.panels.PANELS`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.errors import UserError

from . import colormaps
from .app_api import AppOptions, Perf
from .camera import parse_camera
from .export import ExportJob, picture, save_screenshot, scalar_view, shows_raw
from .learned_camera import initial_camera
from .model import ModelLoader, default_model_spec
from .render_worker import AdaptiveResolution, RenderWorker, reserve_gui_core
from .rendering import LoadedModel, RenderEngine, RenderRequest, RenderResult, ViewSpec
from .session import save_session
from .state import ViewerState, state_to_dict

MOVING_HOLD_S = 0.25  # the view counts as moving until this long after the last camera change


class ViewerApp:
    """State + workers + GL objects; panels read and edit it through its attributes."""

    def __init__(self, state: ViewerState, options: AppOptions):
        self.state, self.options = state, options
        self.device = options.device
        self.torch_threads = reserve_gui_core()
        self.engine = RenderEngine()
        self.worker = RenderWorker(self.engine.render, AdaptiveResolution(1 / state.render.target_fps))
        self.thumb_engine = RenderEngine()
        self.loader = ModelLoader(self.device)
        self.model: LoadedModel | None = None
        self.model_error: str | None = None
        self.result: RenderResult | None = None  # on screen
        self.perf = Perf()
        self.messages: dict[str, str] = {}  # panel -> last message (errors shown in the window)
        self.export_job: ExportJob | None = None
        self.exit_code = 0
        self.gl_error: str | None = None
        self.drop_enabled = False  # files can be dropped on the window
        self.display = None  # viewer.gl.DisplayPass, made in post_init
        self.source_tex = None
        self._display_key: tuple | None = None
        self.thumbs: dict[tuple, object] = {}  # (model uid, seed, psi, class) -> Texture
        self._thumb_done: deque[tuple[tuple, np.ndarray]] = deque()
        self._thumb_pending: set[tuple] = set()
        self._last_key: tuple | None = None
        self._last_change = -1e9
        self._submit_time = 0.0
        self._t_prev = time.monotonic()
        self._t_start = time.monotonic()
        self._frames = 0
        self._first_model = True
        self._keep_camera = False  # the model being loaded keeps the current camera (training snapshots)
        self.training = None  # the Training panel's TrainingController (made below, beside MeshController)
        self._saved_at = time.monotonic()
        self._saved_state = state_to_dict(state)
        self.dragging = False
        if not state.model.spec:
            state.model.spec = default_model_spec()
        self.ui_text: dict[str, str] = {"open": state.model.spec, "run_dir": state.model.run_dir}
        self.file_dialog = None  # the model panel's "Open checkpoint" dialog (Ctrl+O), set by viewer.runner
        from .mesh_jobs import MeshController

        self.mesh = MeshController(self)  # the mesh panel's preview, extraction, GL pass and exports
        from .train_controller import TrainingController

        self.training = TrainingController(self)  # the training panel's run, dataset tool and actions
        from .bake_jobs import BakeController

        self.bakes = BakeController(self)  # the baked GL preview while the camera moves
        self.loader.load(state.model.spec)

    # ------------------------------------------------------------------ requests

    def view_spec(self) -> ViewSpec:
        r = self.state.render
        bg = None if r.model_background else tuple(float(c) * 2 - 1 for c in r.background)
        # depth and opacity come with every render (the display picks what to show): only normals
        # need a different render, so switching between RGB, depth and opacity is instant
        mode = r.mode if r.mode in ("normals", "ddepth") else "rgb"
        return ViewSpec(self.state.camera.camera.copy(), mode, int(r.resolution), float(r.coarse_mult),
                        float(r.fine_mult), bg, bool(r.show_bg_model))

    def latent_spec(self):
        g = self.model.cfg.generator
        cam = self.state.camera.camera
        return self.state.latent.spec(g.c_dim, g.pose_cond, (cam.yaw, cam.pitch))

    def current_request(self, interactive: bool = False, baked: bool = False) -> RenderRequest | None:
        if self.model is None:
            return None
        return RenderRequest(self.model, self.latent_spec(), self.view_spec(), interactive, baked=baked)

    def moving(self, now: float) -> bool:
        s = self.state
        return self.dragging or s.camera.auto_orbit or (s.latent.animate and s.latent.interp) or \
            now - self._last_change < MOVING_HOLD_S

    def camera_changed(self) -> None:
        """Panels call this after editing the camera so the view counts as moving (low-res previews)."""
        self._last_change = time.monotonic()

    # ------------------------------------------------------------------ per frame

    def frame_begin(self) -> None:
        """Start of each frame: collect finished work and animate (viewer.runner then runs the panels'
        hooks and `scripted_step`)."""
        now = time.monotonic()
        dt = min(now - self._t_prev, 0.25)
        self._t_prev = now
        self._frames += 1
        self.perf.frame_ms.append(dt * 1000)
        self._poll_model()
        self._poll_results(now)
        self.bakes.poll()
        self.mesh.poll()
        self._animate(dt)

    def frame_end(self) -> None:
        """End of each frame: submit a render request when what should be shown changed."""
        now = time.monotonic()
        r = self.state.render
        self.worker.configure(r.progressive, r.adaptive, r.moving_samples, 1.0 / max(r.target_fps, 1.0))
        moving, baked = self.moving(now), self.bakes.available()
        if moving and baked:  # the GL preview shows the moving view: neural renders would only slow it
            if self._last_key is not None:  # stop a refinement in progress; resubmit once still
                self.worker.cancel()
                self._last_key = None
            self._set_idling()
            self._autosave(now)
            return
        req = self.current_request(moving, baked)  # baked: no neural preview before the full frame
        if req is None:
            return
        key = (req.model.uid, req.latent, req.view, req.interactive)
        if key != self._last_key:
            self._last_key = key
            self._submit_time = now
            self.worker.submit(req)
        self._set_idling()
        self._autosave(now)

    def _autosave(self, now: float, every_s: float = 5.0) -> None:
        """Save the session every few seconds when it changed (so a crash loses little)."""
        if not self.options.use_session or now - self._saved_at < every_s:
            return
        self._saved_at = now
        snapshot = state_to_dict(self.state)
        if snapshot != self._saved_state:
            try:
                save_session(self.state)
                self._saved_state = snapshot
            except OSError as e:
                self.messages["session"] = f"could not save the session: {e}"

    def _set_idling(self) -> None:
        from imgui_bundle import hello_imgui

        busy = self.worker.busy or self.loader.loading is not None or bool(self._thumb_pending) or \
            (self.export_job is not None and not self.export_job.finished) or self.moving(time.monotonic()) or \
            self.mesh.busy
        hello_imgui.get_runner_params().fps_idling.enable_idling = not busy

    def _poll_model(self) -> None:
        done = self.loader.poll()
        if done is None:
            return
        model, error, spec = done
        if model is None:
            self.model_error = error
            return
        self.model, self.model_error = model, None
        self.state.model.spec = model.spec
        self.state.model.remember(model.spec)
        cam_cfg = model.cfg.camera
        text = self.options.camera_text
        if self._first_model and text is None and not self.state.camera.placed:
            text = "mean"
        self.state.camera.placed = True
        lat, suggested = self.state.latent, model.info.get("meta", {}).get("viewer_class")
        if not lat.class_placed and isinstance(suggested, int) and 0 <= suggested < model.cfg.generator.c_dim:
            lat.class_idx, lat.class_placed = suggested, True  # the class the bundle suggests (core.bundle)
        if self._first_model and text == "mean":
            self.state.camera.camera = initial_camera(model)
        elif self._first_model and text:
            try:
                self.state.camera.camera = parse_camera(text, cam_cfg)
            except ValueError as e:
                self.messages["camera"] = str(e)
        elif not self._first_model and not self._keep_camera:
            self.state.camera.camera = initial_camera(model)
        self._first_model = False
        self._keep_camera = False
        self.worker.error = None
        self.engine.cache.clear()
        self.bakes.cache.clear()

    def _poll_results(self, now: float) -> None:
        r = self.worker.poll()
        if r is not None:
            self.result = r
            self._display_key = None
            self.perf.arrivals.append(now)
            if self.perf.first_frame_s is None:
                self.perf.first_frame_s = now - self._t_start
            if r.quality.level == "full" and not r.request.interactive:
                self.perf.full_refine_s = now - self._submit_time
        while self._thumb_done:
            key, img = self._thumb_done.popleft()
            if self.display is not None:
                from .gl import Texture

                tex = self.thumbs.get(key) or Texture()
                tex.upload(img)
                self.thumbs[key] = tex
            self._thumb_pending.discard(key)

    def _animate(self, dt: float) -> None:
        s = self.state
        if s.camera.auto_orbit:
            s.camera.camera = s.camera.camera.orbited(math.radians(s.camera.orbit_dps) * dt)
        lat = s.latent
        if lat.animate and lat.interp and len(lat.keyframes) >= 2:
            lat.t = (lat.t + dt / max(lat.period_s, 0.1)) % 1.0

    # ------------------------------------------------------------------ display

    def display_texture(self, size: int) -> int | None:
        """The viewport texture at size x size pixels (redrawn through the shader when anything changed)."""
        if self.display is not None and self.state.mesh.show_mesh:
            return self.mesh.texture(size)  # the mesh with the same camera (viewer/mesh_gl.py)
        self.bakes.on_screen = False
        if self.display is not None and self.bakes.showing(time.monotonic()):
            tex = self.bakes.texture(size)  # the baked GL preview, drawn from the current camera
            if tex is not None:
                self.bakes.on_screen = True
                return tex
        if self.display is None or self.result is None:
            return None
        r = self.result
        rs = self.state.render
        sv = scalar_view(r, rs) if r.request.view.mode not in ("normals", "ddepth") else None  # RGB pictures
        key = (id(r), size, rs.mode, rs.colormap, rs.auto_range, tuple(rs.depth_range), rs.raw_image)
        if key != self._display_key:
            if sv is None:  # RGB (an EG3D model's raw neural image with the toggle on) or normals
                self.source_tex.upload(r.raw if shows_raw(r, rs) else r.image)
                rng, rev = (0.0, 1.0), False
            else:
                values, rng, cmap, rev = sv
                self.source_tex.upload(values)
                self.display.set_lut(cmap, colormaps.lut(cmap))
            self.display.draw(self.source_tex, size, rng, rev)
            self._display_key = key
        return self.display.target.id

    def request_thumbnail(self, seed: int) -> object | None:
        """The seed grid's texture for `seed` (None while it renders in the worker's idle time)."""
        if self.model is None:
            return None
        lat = self.state.latent
        key = (self.model.uid, seed, round(lat.psi, 4), lat.class_idx)
        if key in self.thumbs:
            return self.thumbs[key]
        if key not in self._thumb_pending:
            self._thumb_pending.add(key)
            model, cam, psi, cidx = self.model, self.state.camera.camera.copy(), lat.psi, lat.class_idx

            def task() -> None:
                from .eg3d_render import preview_neural_res
                from .latent import LatentSpec
                from .rendering import Quality

                g = model.cfg.generator
                c = min(cidx, g.c_dim - 1) if g.c_dim else None
                req = RenderRequest(model, LatentSpec.from_seed(seed, psi, c), ViewSpec(cam, "rgb", 48))
                nr = preview_neural_res(g.neural_res) if model.eg3d else None
                res = self.thumb_engine.render(req, Quality(48, 8, 8, "preview", nr))
                self._thumb_done.append((key, res.image))

            self.worker.add_idle_task(task)
        return None

    # ------------------------------------------------------------------ actions

    def open_model(self, spec: str, keep_camera: bool = False) -> None:
        """Open a model in the background; keep_camera leaves the view where it is (else: the model's mean camera)."""
        self.model_error = None
        self._keep_camera = keep_camera
        self.loader.load(spec)

    def save_screenshot_async(self, path: Path | None = None) -> None:
        """Save the current view at full quality as PNG in the export folder (in a thread)."""
        from .export import timestamped

        req, rs, result = self.current_request(), replace(self.state.render), self.result
        if req is None:
            self.messages["export"] = "no model loaded"
            return
        if result is not None and (result.request.latent, result.request.view) == (req.latent, req.view):
            req = result.request
        target = path or timestamped(self.state.export.out_dir, "screenshot", ".png")
        self.messages["export"] = f"saving {target} ..."

        def work() -> None:
            try:
                out = save_screenshot(self.engine, req, rs, target, result)
                self.messages["export"] = f"saved {out}"
            except (UserError, OSError) as e:
                self.messages["export"] = f"screenshot failed: {e}"

        threading.Thread(target=work, name="screenshot", daemon=True).start()

    # ------------------------------------------------------------------ scripted mode

    def scripted_step(self) -> None:
        """The scripted mode's step (--screenshot): capture once the frame is ready, then exit."""
        self._scripted_step(time.monotonic())

    def _scripted_step(self, now: float) -> None:
        o = self.options
        if o.screenshot is None:
            return
        from imgui_bundle import hello_imgui

        if now - self._t_start > o.timeout_s:
            print(f"error: no full-quality frame within {o.timeout_s:.0f} s", file=sys.stderr)
            self.exit_code = 1
            hello_imgui.get_runner_params().app_shall_exit = True
            return
        if self.model_error and self.model is None:
            print(f"error: {self.model_error}", file=sys.stderr)
            self.exit_code = 2
            hello_imgui.get_runner_params().app_shall_exit = True
            return
        r, req = self.result, self.current_request()
        if self._frames < o.frames or r is None or req is None or self.worker.busy or r.quality.level != "full":
            return
        if (r.request.latent, r.request.view) != (req.latent, req.view):
            return
        if o.window_screenshot is not None and (self._thumb_pending or self._thumb_done):
            return  # the window picture waits for the seed grid's thumbnails too
        from core.images import save_png

        save_png(picture(r, self.state.render), o.screenshot)
        print(f"wrote {o.screenshot} ({r.quality.resolution}x{r.quality.resolution}, "
              f"{r.quality.num_coarse}+{r.quality.num_fine} samples)")
        hello_imgui.get_runner_params().app_shall_exit = True

    # ------------------------------------------------------------------ lifetime

    def post_init(self) -> None:
        from .gl import DisplayPass, GLUnavailable, Texture, require_gl33

        try:
            require_gl33()
            self.display = DisplayPass()
            self.source_tex = Texture(linear=True)
        except (GLUnavailable, Exception) as e:
            self.gl_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.exit_code = 2
            from imgui_bundle import hello_imgui

            hello_imgui.get_runner_params().app_shall_exit = True

    def before_exit(self) -> None:
        if self.export_job is not None:
            self.export_job.abort()
        if self.training is not None:
            self.training.close()  # a training run keeps going (it is a separate process)
        self.worker.close()
        self.mesh.close()
        self.bakes.close()
        if self.options.use_session:
            try:
                save_session(self.state)
            except OSError as e:
                print(f"warning: could not save the session ({e})", file=sys.stderr)
        if self.display is not None:
            self.display.delete()
            self.source_tex.delete()
            for t in self.thumbs.values():
                t.delete()
            self.display = None
