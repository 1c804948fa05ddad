"""The viewer's state: every panel value, as plain dataclasses that round-trip through JSON.

The GUI edits a `ViewerState`; the render requests, the exports and the session file are all
derived from it. `state_from_dict` is tolerant: unknown keys are ignored and values of the wrong
type keep their defaults (each noted in a warning list), so an old or hand-edited session file
never stops the viewer from starting.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from core.config import PRESETS
from core.geometry.visibility import SURFACES

from .camera import OrbitCamera
from .latent import Keyframe, LatentSpec

RENDER_MODES = ("rgb", "depth", "opacity", "normals", "ddepth")  # ddepth: 3DGP's adapted depth (D's 4th channel)
COLORMAPS = ("turbo", "viridis", "inferno", "grey")
EXPORT_KINDS = ("orbit", "interp", "interp-orbit")
RESOLUTIONS = (64, 96, 128, 192, 256, 384, 512)
MAX_RECENT = 10


@dataclass
class ModelState:
    """Model panel: the open model and where it came from."""

    spec: str = ""  # a checkpoint file, a run folder, demo or random:PRESET ("" = the default model)
    recent: list[str] = field(default_factory=list)  # most recent first
    run_dir: str = ""  # a run folder whose snapshots are listed
    browse_dir: str = ""  # the folder the "Open checkpoint" dialog showed last

    def remember(self, spec: str) -> None:
        """Put `spec` first in the recent list (no duplicates, at most MAX_RECENT)."""
        self.recent = [spec] + [s for s in self.recent if s != spec][: MAX_RECENT - 1]


@dataclass
class LatentState:
    """Latent panel: seed, truncation, label, conditioning pose and keyframe interpolation."""

    seed: int = 0
    w_path: str = ""  # a loaded .npy w latent shown instead of the seed ("" = use the seed)
    psi: float = 1.0
    class_idx: int = 0
    class_placed: bool = False  # False until the user (or --class) chose a class: a model may then suggest one
    pose_mode: str = "mean"  # generator pose conditioning: mean | camera | custom
    pose: list[float] = field(default_factory=lambda: [0.0, math.pi / 2])
    interp: bool = False  # blend the keyframes instead of showing one latent
    keyframes: list[dict] = field(default_factory=lambda: [{"seed": 0}, {"seed": 1}])
    t: float = 0.0
    mode: str = "lerp-w"
    loop: bool = False
    animate: bool = False
    period_s: float = 4.0  # seconds for one pass through all keyframes
    latent_file: str = "latent.npy"
    grid_base: int = 0  # first seed of the seed grid

    def keyframe_objects(self, c_dim: int = 0) -> tuple[Keyframe, ...]:
        """The keyframes; a seed keyframe's "class" counts for a model with c_dim > 0 classes."""
        out = []
        for k in self.keyframes:
            if k.get("path"):
                out.append(Keyframe(path=str(k["path"])))
            else:
                cls = k.get("class")
                cls = min(max(int(cls), 0), c_dim - 1) if c_dim > 0 and isinstance(cls, int) else None
                out.append(Keyframe(seed=int(k.get("seed", 0)), class_idx=cls))
        return tuple(out)

    def spec(self, c_dim: int = 0, pose_cond: bool = False, camera_pose: tuple[float, float] | None = None
             ) -> LatentSpec:
        """The LatentSpec shown, for a model with c_dim classes and optional pose conditioning."""
        class_idx = min(max(self.class_idx, 0), c_dim - 1) if c_dim > 0 else None
        pose = None
        if pose_cond and self.pose_mode == "camera" and camera_pose is not None:
            pose = (float(camera_pose[0]), float(camera_pose[1]))
        elif pose_cond and self.pose_mode == "custom":
            pose = (float(self.pose[0]), float(self.pose[1]))
        if self.interp and len(self.keyframes) >= 2:
            keys = self.keyframe_objects(c_dim)
            return LatentSpec(keys, float(self.t), self.mode, self.loop, float(self.psi), class_idx, pose)
        key = Keyframe(path=self.w_path) if self.w_path else Keyframe(seed=int(self.seed))
        return LatentSpec((key,), 0.0, self.mode, False, float(self.psi), class_idx, pose)


@dataclass
class CameraState:
    """Camera panel: the orbit camera, drag sensitivity and auto-orbit."""

    camera: OrbitCamera = field(default_factory=OrbitCamera)
    placed: bool = False  # False until a model placed the camera: a fresh state starts at the model's mean
    sensitivity: float = 1.0
    auto_orbit: bool = False
    orbit_dps: float = 30.0  # auto-orbit speed, degrees per second
    learned_draws: int = 0  # 3DGP models: the seed of the last "Sample a camera"


@dataclass
class RenderState:
    """Render panel: what to show and at which quality."""

    mode: str = "rgb"
    raw_image: bool = False  # EG3D models, RGB mode: the raw neural image instead of the super-resolved one
    colormap: str = "turbo"
    auto_range: bool = True  # depth range from the visible surface
    depth_range: list[float] = field(default_factory=lambda: [0.75, 1.25])
    coarse_mult: float = 1.0
    fine_mult: float = 1.0
    model_background: bool = True  # use the model's background colour
    background: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # RGB in [0, 1]
    show_bg_model: bool = True  # draw a model's background MLP (models with generator.bg_model)
    resolution: int = 256  # full-quality resolution
    adaptive: bool = True  # lower resolution while moving to hold the target frame rate
    target_fps: float = 12.0
    moving_samples: float = 0.5  # sample multiplier while the camera moves
    progressive: bool = True  # refine to full quality when the view is still
    baked_preview: bool = True  # while the camera moves, ray-march the latent's baked field with GL
    bake_res: int = 128  # nodes per side of the baked field


@dataclass
class ExportState:
    """Export panel: output folder and video settings."""

    out_dir: str = "exports"
    kind: str = "orbit"
    frames: int = 60
    fps: int = 30
    resolution: int = 256
    mp4: bool = True
    png_frames: bool = False


MESH_SHADING = ("shaded", "colors")
MESH_RESOLUTIONS = (32, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


@dataclass
class MeshState:
    """Mesh panel: marching-cubes settings, the crop box, cleanup and the viewport toggle."""

    resolution: int = 128  # grid samples per side (32-1024)
    surface: str = "visibility"  # visibility (iso-surface of the occlusion: fills opaque shells) | density
    auto_level: bool = True  # the level matching the rendered silhouette (core.geometry.level)
    level: float = 1.0  # iso-level in activated-density units when auto_level is off (density surface)
    occlusion_level: float = 0.5  # iso-level of the occlusion, in (0, 1), when auto_level is off (visibility)
    crop: bool = False  # extract inside crop_lo..crop_hi instead of the whole tri-plane cube
    crop_lo: list[float] = field(default_factory=lambda: [-1.0, -1.0, -1.0])  # in units of cube_scale
    crop_hi: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    keep_components: int = 1  # keep the N largest parts (0 = all)
    smooth: int = 0  # Taubin smoothing iterations
    decimate: float = 1.0  # fraction of faces kept (1 = no decimation)
    preview: bool = True  # live 64^3 preview mesh, re-extracted when the level or the box changes
    show_mesh: bool = False  # the viewport shows the mesh (same camera) instead of the volume render
    shading: str = "shaded"  # shaded (normals, headlight) | colors (vertex colours from the field)


@dataclass
class TrainState:
    """Training panel: dataset, preset, the generated options, the run folder and how it is followed."""

    data: str = "data/synth.zip"  # dataset folder or .zip with a dataset.json
    preset: str = "demo"
    values: dict = field(default_factory=dict)  # main config fields edited in the form (dotted name -> value)
    overrides: str = ""  # more 'section.key=value' overrides, one per line (passed as --set)
    outdir: str = "runs/viewer"  # the run folder (Attach re-opens it)
    device: str = "auto"  # auto | cpu | cuda
    gpus: int = 1  # processes; > 1 launches torchrun (GPUs, or gloo CPU processes with device cpu)
    auto_load: bool = True  # open each new snapshot in the view (the camera is kept)
    stop_timeout_s: float = 300.0  # after SIGTERM, wait this long for the snapshot before SIGKILL
    synth_objects: int = 8  # core.dataset_tool synthetic --num-objects
    synth_views: int = 16  # --views
    synth_res: int = 64  # --res (also the render tool's)
    meshes_dir: str = ""  # core.dataset_tool render --meshes
    render_views: int = 32  # render --views
    render_up: str = "y"  # render --up (pybullet_data's meshes: z)
    show_advanced: bool = False


@dataclass
class UiState:
    """Windows and toggles that are not part of a panel."""

    show_help: bool = False


@dataclass
class ViewerState:
    """Everything the session file restores."""

    version: int = 1
    model: ModelState = field(default_factory=ModelState)
    latent: LatentState = field(default_factory=LatentState)
    camera: CameraState = field(default_factory=CameraState)
    render: RenderState = field(default_factory=RenderState)
    export: ExportState = field(default_factory=ExportState)
    mesh: MeshState = field(default_factory=MeshState)
    train: TrainState = field(default_factory=TrainState)
    ui: UiState = field(default_factory=UiState)


def state_to_dict(state: Any) -> dict:
    """A JSON-ready dict of a state dataclass (nested dataclasses become dicts)."""
    return dataclasses.asdict(state)


def _compatible(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        if not isinstance(value, list):
            return False
        if default and all(isinstance(d, (int, float)) for d in default):  # fixed-length number vectors
            return len(value) == len(default) and all(_compatible(float(d), v) for d, v in zip(default, value))
        return True
    if isinstance(default, dict):
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return default is None


def _coerce(default: Any, value: Any) -> Any:
    """Ints become floats where the default is a float (also inside number vectors)."""
    if isinstance(default, float):
        return float(value)
    if isinstance(default, list) and default and all(isinstance(d, float) for d in default):
        return [float(v) for v in value]
    return value


def merge_into(obj: Any, data: Any, warnings: list[str], path: str = "") -> Any:
    """Copy the compatible values of `data` into the dataclass `obj` (in place); returns obj."""
    if not isinstance(data, dict):
        warnings.append(f"'{path or 'session'}' is not a mapping: defaults kept")
        return obj
    for f in dataclasses.fields(obj):
        if f.name not in data:
            continue
        cur, val, where = getattr(obj, f.name), data[f.name], f"{path}{f.name}"
        if dataclasses.is_dataclass(cur):
            merge_into(cur, val, warnings, where + ".")
        elif _compatible(cur, val):
            setattr(obj, f.name, _coerce(cur, val))
        else:
            warnings.append(f"'{where}' has an unusable value {val!r}: default kept")
    return obj


def state_from_dict(data: Any, warnings: list[str] | None = None) -> ViewerState:
    """A ViewerState from a (possibly old or partial) dict; problems go to `warnings`."""
    warnings = [] if warnings is None else warnings
    state = merge_into(ViewerState(), data, warnings)
    return sanitise(state, warnings)


def sanitise(state: ViewerState, warnings: list[str]) -> ViewerState:
    """Clamp enumerations and ranges to valid values after loading."""
    r, lat = state.render, state.latent
    if r.mode not in RENDER_MODES:
        warnings.append(f"render mode '{r.mode}' unknown: rgb")
        r.mode = "rgb"
    if r.colormap not in COLORMAPS:
        r.colormap = "turbo"
    if lat.mode not in ("lerp-w", "slerp-z"):
        lat.mode = "lerp-w"
    if lat.pose_mode not in ("mean", "camera", "custom"):
        lat.pose_mode = "mean"
    t = state.train
    if t.device not in ("auto", "cpu", "cuda"):
        t.device = "auto"
    if t.render_up not in ("y", "z"):
        t.render_up = "y"
    if t.preset not in PRESETS:
        t.preset = "demo"
    t.gpus = min(max(int(t.gpus), 1), 64)
    t.stop_timeout_s = min(max(t.stop_timeout_s, 5.0), 3600.0)
    if state.export.kind not in EXPORT_KINDS:
        state.export.kind = "orbit"
    lat.keyframes = [k for k in lat.keyframes if isinstance(k, dict) and
                     (isinstance(k.get("seed"), int) or isinstance(k.get("path"), str))] or [{"seed": 0}, {"seed": 1}]
    lat.t = min(max(lat.t, 0.0), 1.0)
    r.resolution = min(max(int(r.resolution), 16), 1024)
    r.target_fps = min(max(r.target_fps, 1.0), 120.0)
    r.bake_res = min(max(int(r.bake_res), 32), 256)
    m = state.mesh
    m.resolution = min(max(int(m.resolution), 32), 1024)
    if m.shading not in MESH_SHADING:
        m.shading = "shaded"
    if m.surface not in SURFACES:
        m.surface = "visibility"
    m.occlusion_level = min(max(m.occlusion_level, 1e-3), 0.999)
    m.decimate = min(max(m.decimate, 0.01), 1.0)
    m.keep_components = max(0, int(m.keep_components))
    m.smooth = min(max(0, int(m.smooth)), 100)
    m.level = max(0.0, m.level)
    if any(b <= a for a, b in zip(m.crop_lo, m.crop_hi)):
        m.crop_lo, m.crop_hi = [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]
    state.model.recent = [s for s in state.model.recent if isinstance(s, str)][:MAX_RECENT]
    cam = state.camera.camera
    if not isinstance(cam.look_at, list) or len(cam.look_at) != 3:
        cam.look_at = [0.0, 0.0, 0.0]
    state.camera.camera = cam.normalised(1.0)
    return state
