"""The baked preview's jobs and glue: bakes run on the render worker, the GUI thread uploads and
draws them (viewer/baked_preview.py).

After the first neural frame of a latent arrives, a bake of that latent (core.render.bake, under
a second at 128^3 on one CPU thread) is queued as one of the render worker's idle tasks, so it
runs on the worker thread when no render request is pending and never on the GUI thread. A bake
whose latent is no longer the one on screen stops between blocks (or does not start) and is
dropped; finished bakes are cached per (model uid, LatentSpec, resolution), like the tri-planes.

While the camera moves and the current latent has a bake, the viewport shows the GL preview drawn
every frame from the current camera at the viewport's size, and no neural previews are requested
(they would take the CPU from the preview); once the camera is still, the full-quality neural
render is requested directly and replaces the preview when it arrives.

EG3D models get no bake: the baked field holds the colours and densities of G.query, which an
EG3D model's super-resolution turns into its final image; a GL ray-march of the field would show
neither that image nor the raw neural one. Their moving frames are neural renders at a lower
neural resolution (viewer/eg3d_render.py).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass

import torch

from core.geometry import Cancelled
from core.render.bake import BakedField, bake

from . import colormaps
from .export import depth_range

BAKE_RESOLUTIONS = (64, 96, 128, 160, 192)


@dataclass
class BakeStats:
    """Counters for the performance panel and the tests."""

    queued: int = 0
    baked: int = 0
    dropped: int = 0  # finished or stopped for a latent no longer on screen
    failed: int = 0
    uploads: int = 0
    last_s: float = 0.0  # seconds of the last finished bake
    upload_s: float = 0.0  # seconds of the last upload
    thread: str = ""  # the thread the last bake ran on


class BakeCache:
    """LRU of finished bakes per key, bounded in bytes (at least the newest is kept). Thread-safe."""

    def __init__(self, max_bytes: int = 96 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, BakedField] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple | None) -> BakedField | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple, field: BakedField) -> None:
        with self._lock:
            self._items[key] = field
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(f.nbytes for f in self._items.values()) > self.max_bytes:
                self._items.popitem(last=False)

    def __contains__(self, key: tuple) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class BakeController:
    """The app's baked-preview side. GUI thread: `poll()` once per frame, `showing(now)` and
    `texture(size)` from the viewport; the bakes themselves run on the render worker."""

    def __init__(self, app):
        self.app = app
        self.cache = BakeCache()
        self.stats = BakeStats()
        self.pass_ = None  # viewer.baked_preview.BakedPreviewPass, made on the GUI thread
        self.error: str | None = None
        self.on_screen = False  # the viewport showed the preview in the last frame (set by the app)
        self._want: tuple | None = None  # the key on screen now (read by the worker's cancel check)
        self._inflight: tuple | None = None
        self._failed: set[tuple] = set()
        self._done: deque[tuple[tuple, BakedField | None, str | None, float, str]] = deque()
        self._draw_key: tuple | None = None
        self._range: tuple | None = None  # (id(result), auto, range) for the depth colour table

    # ------------------------------------------------------------------ keys

    def enabled(self) -> bool:
        app = self.app
        return (app.state.render.baked_preview and app.model is not None and not app.model.eg3d
                and app.state.render.mode != "ddepth"  # the adaptor is a network: no GL version of it
                and app.options.screenshot is None and not app.state.mesh.show_mesh and self.error is None)

    def key(self) -> tuple | None:
        """(model uid, LatentSpec, resolution) of the bake the current view would use."""
        app = self.app
        if app.model is None:
            return None
        return (app.model.uid, app.latent_spec(), int(app.state.render.bake_res))

    def available(self) -> bool:
        """The preview can be drawn now: enabled and the current latent's bake is on hand."""
        return self.enabled() and self.key() in self.cache

    def showing(self, now: float) -> bool:
        """The viewport shows the GL preview: it is available and the view moves, or the neural
        full-quality frame of the current view has not arrived yet."""
        if not self.available():
            return False
        app = self.app
        if app.moving(now):
            return True
        r, req = app.result, app.current_request()
        return not (r is not None and req is not None and r.quality.level == "full"
                    and r.request.model is req.model and (r.request.latent, r.request.view) == (req.latent, req.view))

    @property
    def busy(self) -> bool:
        return self._inflight is not None

    # ------------------------------------------------------------------ per frame (GUI thread)

    def poll(self) -> None:
        """Take finished bakes (upload the current one) and queue the current latent's bake once its
        first neural frame is on screen."""
        key = self.key() if self.enabled() else None
        self._want = key
        while self._done:
            k, field, err, seconds, thread = self._done.popleft()
            if self._inflight == k:
                self._inflight = None
            self.stats.thread = thread
            if err is not None:
                self.stats.failed += 1
                self._failed.add(k)
                self.app.messages["render"] = f"baked preview failed: {err}"
            elif field is None or k != self._want:
                self.stats.dropped += 1
            else:
                self.stats.baked += 1
                self.stats.last_s = seconds
                self.cache.put(k, field)
                self._upload(k, field)
        if key is None or key in self.cache or key in self._failed or self._inflight is not None:
            return
        app = self.app
        lat, r = app.state.latent, app.result
        if lat.animate and lat.interp:
            return  # a new latent every frame: nothing would stay long enough to use a bake
        if r is None or r.request.model is not app.model or r.request.latent != key[1]:
            return  # the latent's first neural frame comes first
        self._queue(key)

    def _queue(self, key: tuple) -> None:
        model, latent, res = self.app.model, key[1], key[2]
        engine = self.app.engine

        def stale() -> bool:
            return self._want != key

        def task() -> None:
            name = threading.current_thread().name
            if stale():
                self._done.append((key, None, None, 0.0, name))
                return
            t0 = time.perf_counter()
            try:
                planes = engine.planes(model, latent)[0]
                with torch.no_grad():
                    model.G.prepare(planes)  # the neural refine's occupancy grid, off the critical path
                    field = bake(model.G, planes, res, cancel=stale)
                self._done.append((key, field, None, time.perf_counter() - t0, name))
            except Cancelled:
                self._done.append((key, None, None, time.perf_counter() - t0, name))
            except Exception as e:  # shown in the window, never a crash of the worker
                traceback.print_exc()
                self._done.append((key, None, f"{type(e).__name__}: {e}", 0.0, name))

        self._inflight = key
        self.stats.queued += 1
        self.app.worker.add_idle_task(task)

    # ------------------------------------------------------------------ GL (GUI thread)

    def _ensure_pass(self) -> bool:
        if self.pass_ is None:
            if self.app.display is None:
                return False  # no GL context (yet)
            from .gl import GLUnavailable
            try:
                from .baked_preview import BakedPreviewPass
                self.pass_ = BakedPreviewPass()
            except (GLUnavailable, Exception) as e:  # the viewer keeps working without the preview
                self.error = f"baked preview unavailable: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                self.app.messages["render"] = self.error
                return False
        return True

    def _upload(self, key: tuple, field: BakedField) -> None:
        if self._ensure_pass() and self.pass_.key != key:
            self.stats.upload_s = self.pass_.upload(field, key)
            self.stats.uploads += 1
            self._draw_key = None

    def background(self) -> tuple[float, float, float]:
        """The view's background colour in [0, 1] (a model's background network is not baked)."""
        from core.networks.generator import background_color

        app = self.app
        bg = app.view_spec().background
        t = background_color(app.model.cfg.render.background if bg is None else bg, "cpu", torch.float32)
        return tuple(float((c + 1) / 2) for c in t)

    def _scalar_range(self) -> tuple[float, float]:
        rs, r = self.app.state.render, self.app.result
        if r is None or not rs.auto_range:
            return float(rs.depth_range[0]), float(rs.depth_range[1])
        if self._range is None or self._range[0] != id(r):
            self._range = (id(r), depth_range(r, rs))
        return self._range[1]

    def texture(self, size: int) -> int | None:
        """The preview of the current view at size x size pixels (redrawn when anything changed),
        or None when there is nothing to draw."""
        key = self.key()
        field = self.cache.get(key)
        if field is None or not self._ensure_pass():
            return None
        self._upload(key, field)
        app, rs = self.app, self.app.state.render
        mode = rs.mode
        rng, rev = (0.0, 1.0), False
        if mode == "depth":
            rng, rev = self._scalar_range(), True
            self.pass_.set_lut(rs.colormap, colormaps.lut(rs.colormap))
        elif mode == "opacity":
            self.pass_.set_lut("grey", colormaps.lut("grey"))
        cam = app.state.camera.camera
        bg = self.background()
        draw_key = (key, cam.key(), size, mode, rs.colormap, rng, rev, bg)
        if draw_key != self._draw_key:
            self.pass_.draw(cam.to_cameras(app.model.cfg.camera), size, mode, bg, app.model.cfg.render.far_opaque,
                            rng, rev)
            self._draw_key = draw_key
        return self.pass_.target.id

    def close(self) -> None:
        self._want = None
        self.cache.clear()
        if self.pass_ is not None:
            self.pass_.delete()
            self.pass_ = None
