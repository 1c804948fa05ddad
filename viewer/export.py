"""Pictures and videos out of the viewer: screenshots, orbit / interpolation videos, PNG frames.

`picture(result, render_state)` turns a render into the PNG the window shows (RGB or normals as
rendered; depth and opacity through the same colour table as the display shader; an EG3D model's
raw neural image, depth and opacity come at the neural resolution and are upsampled bilinearly to
the image's size, as the display shader draws them). `ExportJob`
renders videos in a background thread through the same `RenderEngine` (so through `G.render`),
writes mp4 with core.video.write_mp4 and/or numbered PNG frames, and reports progress; `abort()`
stops it between tiles.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.cameras import orbit_angles
from core.errors import UserError
from core.images import save_png
from core.video import write_mp4

from . import colormaps
from .camera import OrbitCamera, clamp_pitch, wrap_angle
from .latent import LatentSpec
from .rendering import RenderEngine, RenderRequest, RenderResult, full_quality
from .state import ExportState, RenderState


def depth_range(result: RenderResult, render: RenderState) -> tuple[float, float]:
    """The depth range shown: the visible surface's 1st..99th percentile (auto), else the panel's."""
    if not render.auto_range:
        return float(render.depth_range[0]), float(render.depth_range[1])
    d = result.depth[result.opacity > 0.5]
    if d.size < 16:  # no solid surface (e.g. an untrained model's fog): spread the whole picture
        d = result.depth.reshape(-1)
    lo, hi = np.percentile(d, [1, 99])
    return (float(lo), float(hi)) if hi - lo > 1e-6 else (float(lo) - 1e-3, float(hi) + 1e-3)


def scalar_view(result: RenderResult, render: RenderState) -> tuple[np.ndarray, tuple[float, float], str, bool] | None:
    """(values, range, colour map, reverse) for scalar modes; None for RGB and normals."""
    if render.mode == "depth":
        return result.depth, depth_range(result, render), render.colormap, True  # near = the table's end
    if render.mode == "opacity":
        return result.opacity, (0.0, 1.0), "grey", False
    return None


def shows_raw(result: RenderResult, render: RenderState) -> bool:
    """The view shows an EG3D model's raw neural image (RGB mode with the toggle on)."""
    return render.raw_image and render.mode == "rgb" and result.raw is not None


def upsampled(a: np.ndarray, size: int) -> np.ndarray:
    """[h, w] or [h, w, 3] resized bilinearly to size x size (unchanged when already that size)."""
    if a.shape[0] == size and a.shape[1] == size:
        return a
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0]
    if a.dtype == np.uint8:
        return t.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return t[0].numpy()


def picture(result: RenderResult, render: RenderState) -> np.ndarray:
    """[H, W, 3] uint8 of a render as the viewport shows it (at the rendered image's size)."""
    size = result.image.shape[0]
    if shows_raw(result, render):
        return upsampled(result.raw, size)
    sv = scalar_view(result, render) if result.request.view.mode != "normals" else None
    if sv is None:
        return result.image
    values, (lo, hi), cmap, reverse = sv
    return colormaps.apply(upsampled(values, size), lo, hi, cmap, reverse)


def timestamped(out_dir: str | Path, stem: str, suffix: str) -> Path:
    """out_dir/stem-YYYYmmdd-HHMMSS[-k]suffix, not yet existing."""
    d = Path(out_dir).expanduser()
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = d / f"{base}{suffix}", 1
    while path.exists():
        path, k = d / f"{base}-{k}{suffix}", k + 1
    return path


def camera_path(cam: OrbitCamera, cfg, n: int) -> list[OrbitCamera]:
    """n cameras along core's dataset-aware orbit (a full turn, or a swing for face priors), starting at `cam`."""
    a = orbit_angles(cfg, n)
    out = []
    for k in range(n):
        c = cam.copy()
        c.yaw = wrap_angle(cam.yaw + float(a[k, 0] - a[0, 0]))
        c.pitch = clamp_pitch(cam.pitch + float(a[k, 1] - a[0, 1]))
        out.append(c)
    return out


@dataclass
class ExportPlan:
    """What a video export renders: one (camera, latent) per frame."""

    kind: str
    frames: list[tuple[OrbitCamera, LatentSpec]] = field(default_factory=list)


def plan_video(kind: str, cam: OrbitCamera, latent: LatentSpec, cfg, n: int) -> ExportPlan:
    """Frames for 'orbit' (camera turns, latent fixed), 'interp' (latent along the keyframes, camera
    fixed) or 'interp-orbit' (both at once)."""
    if n < 1:
        raise UserError("a video needs at least one frame")
    if kind != "orbit" and len(latent.keyframes) < 2:
        raise UserError("an interpolation video needs two or more keyframes (latent panel)")
    cams = camera_path(cam, cfg, n) if kind in ("orbit", "interp-orbit") else [cam] * n
    frames = []
    for k in range(n):
        if kind == "orbit":
            spec = latent
        else:
            t = k / n if latent.loop else k / max(n - 1, 1)
            spec = replace(latent, t=t)
        frames.append((cams[k], spec))
    return ExportPlan(kind, frames)


class ExportJob:
    """A video (or screenshot) export running in its own thread, with progress and abort."""

    def __init__(self, engine: RenderEngine, request: RenderRequest, render: RenderState, export: ExportState,
                 plan: ExportPlan):
        self.engine, self.request, self.render, self.export, self.plan = engine, request, render, export, plan
        self.done_frames = 0
        self.total = len(plan.frames)
        self.outputs: list[Path] = []
        self.error: str | None = None
        self.finished = False
        self.aborted = False
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export", daemon=True)

    def start(self) -> ExportJob:
        self._thread.start()
        return self

    def abort(self) -> None:
        self._abort.set()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def progress(self) -> float:
        return self.done_frames / max(self.total, 1)

    def _frames(self, png_dir: Path | None):
        res = self.export.resolution
        res += res % 2  # yuv420p needs even sizes
        for k, (cam, spec) in enumerate(self.plan.frames):
            view = replace(self.request.view, camera=cam, resolution=res)
            req = replace(self.request, latent=spec, view=view, interactive=False)
            result = self.engine.render(req, full_quality(req.model, view), self._abort.is_set)
            if result is None:
                raise _Aborted()
            img = picture(result, self.render)
            if png_dir is not None:
                save_png(img, png_dir / f"frame{k:04d}.png")
            self.done_frames = k + 1
            yield img

    def _run(self) -> None:
        e = self.export
        try:
            stem = f"{self.plan.kind}"
            png_dir = timestamped(e.out_dir, f"{stem}-frames", "") if e.png_frames else None
            if png_dir is not None:
                png_dir.mkdir(parents=True)
                self.outputs.append(png_dir)
            if e.mp4:
                path = timestamped(e.out_dir, stem, ".mp4")
                write_mp4(self._frames(png_dir), path, e.fps)
                self.outputs.append(path)
            else:
                for _ in self._frames(png_dir):
                    pass
        except _Aborted:
            self.aborted = True
        except UserError as err:
            self.error = str(err)
        except Exception as err:  # shown in the export panel
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self.finished = True


class _Aborted(Exception):
    pass


def save_screenshot(engine: RenderEngine, request: RenderRequest, render: RenderState, path: str | Path,
                    result: RenderResult | None = None) -> Path:
    """Save the full-quality render of `request` as PNG (reusing `result` when it is that render)."""
    if result is None or result.request is not request or result.quality.level != "full":
        result = engine.render(request, full_quality(request.model, request.view))
    path = Path(path).expanduser()
    save_png(picture(result, render), path)
    return path
