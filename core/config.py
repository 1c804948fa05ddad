"""Typed configuration: dataclasses with a doc string per field, and named presets.

Every field is declared with `doc(default, "what it means")`; the text lives in the field's metadata
so command-line help and the viewer's forms can be generated from the same source. The resolved
config travels inside every checkpoint (`to_dict` / `from_dict`).

Numbers in `ffhq512` and `megascans256` are the EpiGRAF reference's (shared/spec/model.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError


def doc(default: Any, text: str) -> Any:
    """A dataclass field with a default and a documentation string (kept in its metadata)."""
    return field(default=default, metadata={"doc": text})


def field_doc(cls_or_obj: Any, name: str) -> str:
    """The documentation string of a config field."""
    for f in dataclasses.fields(cls_or_obj):
        if f.name == name:
            return f.metadata.get("doc", "")
    raise KeyError(name)


@dataclass
class GeneratorConfig:
    """Mapping network, StyleGAN2 tri-plane synthesis and the tri-plane decoder."""

    z_dim: int = doc(512, "Dimensionality of the latent z (sampled from N(0, I)).")
    w_dim: int = doc(512, "Dimensionality of the intermediate latent w.")
    c_dim: int = doc(0, "Dimensionality of the class label (0 = unconditional).")
    mapping_layers: int = doc(2, "Fully-connected layers in the mapping network.")
    mapping_lr_mult: float = doc(0.01, "Learning-rate multiplier of the mapping network.")
    w_avg_beta: float = doc(0.998, "Decay of the running mean of w used for truncation.")
    pose_cond: bool = doc(False, "Generator pose conditioning: yaw/pitch appended to the label c.")
    plane_res: int = doc(512, "Resolution Rp of each tri-plane (synthesis output size).")
    plane_channels: int = doc(32, "Feature channels per plane (three planes are produced).")
    channel_base: int = doc(32768, "Synthesis channels at resolution r are min(channel_base / r, channel_max).")
    channel_max: int = doc(512, "Upper bound on synthesis channels.")
    use_noise: bool = doc(True, "Per-pixel noise inputs in the synthesis network.")
    decoder_hidden: int = doc(64, "Hidden width of the tri-plane decoder MLP (planes -> hidden -> rgb+density).")
    cube_scale: float = doc(0.2, "Half side of the world cube covered by the tri-planes (points are divided by it).")
    density_shift: float = doc(0.0, "sigma = softplus(raw + shift); EpiGRAF uses 0, EG3D -1.")
    density_noise_init: float = doc(1.0, "Std of Gaussian noise on raw density at the start of training.")
    density_noise_kimg: float = doc(5000.0, "kimg over which the density noise anneals linearly to 0.")


@dataclass
class RenderConfig:
    """Ray sampling and compositing."""

    num_coarse: int = doc(48, "Stratified samples per ray in the coarse pass.")
    num_fine: int = doc(48, "Importance samples per ray drawn from the coarse weights (0 = coarse only).")
    background: str = doc(
        "zero",
        "Colour behind the object, in the [-1, 1] image range: 'white' (+1), 'black' (-1) or 'zero' "
        "(0, the reference's default when white_back is off).",
    )
    far_opaque: bool = doc(
        True,
        "Reference behaviour: the last sample's interval is 1e10 long, so every ray becomes opaque at "
        "the far bound. False: the last interval is 1e-3 and the background shows through.",
    )
    chunk_rays: int = doc(8192, "Rays rendered per chunk at inference (bounds peak memory).")


@dataclass
class CameraConfig:
    """The camera prior of the dataset (EpiGRAF's yaw/pitch on a sphere around the look-at point)."""

    fov_deg: float = doc(12.0, "Field of view in degrees (square images).")
    radius: float = doc(1.0, "Distance of the camera from the look-at point.")
    near: float = doc(0.88, "Near bound along the unit ray, at the default radius.")
    far: float = doc(1.12, "Far bound along the unit ray, at the default radius.")
    look_at: tuple[float, float, float] = doc((0.0, 0.0, 0.0), "The point the camera looks at.")
    dist: str = doc("gaussian", "Pose prior: 'gaussian', 'uniform' or 'spherical_uniform'.")
    yaw_mean: float = doc(0.0, "Mean yaw in radians (0 = frontal, camera on +x).")
    yaw_std: float = doc(0.3, "Yaw spread: std (gaussian) or half-range (uniform kinds).")
    pitch_mean: float = doc(math.pi / 2, "Mean pitch in radians (pi/2 = equator).")
    pitch_std: float = doc(0.155, "Pitch spread: std (gaussian) or half-range (uniform kinds).")


@dataclass
class ModelConfig:
    """Everything needed to build and render a generator."""

    name: str = doc("custom", "Preset name this config was derived from.")
    img_resolution: int = doc(256, "Resolution R of the dataset images (renders default to it).")
    generator: GeneratorConfig = field(default_factory=GeneratorConfig, metadata={"doc": "Generator."})
    render: RenderConfig = field(default_factory=RenderConfig, metadata={"doc": "Renderer."})
    camera: CameraConfig = field(default_factory=CameraConfig, metadata={"doc": "Camera prior."})


# --------------------------------------------------------------------------------------------------
# Presets


def _ffhq512() -> ModelConfig:
    return ModelConfig(
        name="ffhq512",
        img_resolution=512,
        generator=GeneratorConfig(plane_res=512, cube_scale=0.2, pose_cond=True),
        render=RenderConfig(background="zero", far_opaque=True),
        camera=CameraConfig(fov_deg=12.0, radius=1.0, near=0.88, far=1.12, dist="gaussian",
                            yaw_mean=0.0, yaw_std=0.3, pitch_mean=math.pi / 2, pitch_std=0.155),
    )


def _megascans256() -> ModelConfig:
    return ModelConfig(
        name="megascans256",
        img_resolution=256,
        generator=GeneratorConfig(plane_res=512, cube_scale=0.475),
        render=RenderConfig(background="white", far_opaque=True),
        camera=CameraConfig(fov_deg=30.0, radius=1.0, near=0.75, far=1.25, dist="spherical_uniform",
                            yaw_mean=0.0, yaw_std=math.pi, pitch_mean=math.pi / 2, pitch_std=math.pi / 2),
    )


def _demo() -> ModelConfig:
    # Small enough to train on a 2-core CPU: 64x64 images, 64x64 planes, <= 128 channels, 24+24
    # samples. Megascans-like cameras (whole sphere, white background). The far bound is not made
    # opaque so that the accumulated opacity (and meshes) show the object, not the far plane.
    return ModelConfig(
        name="demo",
        img_resolution=64,
        generator=GeneratorConfig(z_dim=128, w_dim=128, plane_res=64, channel_base=4096,
                                  channel_max=128, decoder_hidden=64, cube_scale=0.475),
        render=RenderConfig(num_coarse=24, num_fine=24, background="white", far_opaque=False),
        camera=CameraConfig(fov_deg=30.0, radius=1.0, near=0.75, far=1.25, dist="spherical_uniform",
                            yaw_mean=0.0, yaw_std=math.pi, pitch_mean=math.pi / 2, pitch_std=math.pi / 2),
    )


PRESETS = {"demo": _demo, "ffhq512": _ffhq512, "megascans256": _megascans256}


def get_preset(name: str) -> ModelConfig:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()


# --------------------------------------------------------------------------------------------------
# Serialisation and overrides


def to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples become lists) that torch.load(weights_only=True) accepts."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def from_dict(cls: type, data: dict, path: str = "") -> Any:
    """Build a config dataclass from a dict, refusing unknown keys (missing ones keep defaults)."""
    if not isinstance(data, dict):
        raise UserError(f"config section '{path or cls.__name__}' is not a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"unknown config key(s) {unknown} in '{path or cls.__name__}'")
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        sub = _dataclass_type(cls, name)
        if sub is not None:
            kwargs[name] = from_dict(sub, value, f"{path}{name}.")
        elif isinstance(f.default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _dataclass_type(cls: type, name: str) -> type | None:
    """The dataclass type of a nested section (generator/render/camera), else None."""
    for f in dataclasses.fields(cls):
        if f.name == name and f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            t = f.default_factory  # the factory is the dataclass itself
            return t if dataclasses.is_dataclass(t) else None
    return None


def apply_override(cfg: Any, assignment: str) -> None:
    """Apply 'section.key=value' in place, parsing the value by the field's current type."""
    if "=" not in assignment:
        raise UserError(f"override '{assignment}' must look like section.key=value")
    key, raw = assignment.split("=", 1)
    obj = cfg
    parts = key.strip().split(".")
    for p in parts[:-1]:
        if not hasattr(obj, p) or not dataclasses.is_dataclass(getattr(obj, p)):
            raise UserError(f"unknown config section '{p}' in override '{assignment}'")
        obj = getattr(obj, p)
    name = parts[-1]
    if name not in {f.name for f in dataclasses.fields(obj)}:
        raise UserError(f"unknown config key '{key}' in override '{assignment}'")
    setattr(obj, name, _parse_like(getattr(obj, name), raw.strip(), key))


def _parse_like(current: Any, raw: str, key: str) -> Any:
    try:
        if isinstance(current, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            return tuple(float(x) for x in raw.strip("()[]").split(","))
        return raw
    except ValueError:
        raise UserError(f"cannot parse '{raw}' for config key '{key}' (expected {type(current).__name__})") from None
