"""Official EG3D snapshot records (NVlabs/eg3d `network-snapshot-*.pkl`, and the released
`ffhq512-128.pkl` etc., which have the same layout) -> our config and state dicts. Nothing from the
file executes (`core.official.unpickle`).

Names map as

    backbone.mapping.fc{i}.*              -> mapping_network.layers.{i}.*
    backbone.mapping.{embed.*, w_avg}     -> mapping_network.{embed.*, w_avg}
    backbone.synthesis.b{R}.*             -> synthesis.blocks.{log2(R) - 2}.*
    superresolution.block{k}.*            -> superresolution.block{k}.*
    decoder.net.{0, 2}.*                  -> decoder.fc{0, 1}.*

(`resample_filter` buffers are constants and dropped; `dataset_label_std`, a training statistic, is
kept in the meta). The architecture is read from the records, never assumed: the plane resolution
from the backbone's blocks, the widths from weight shapes, the rendering settings from the pickled
`rendering_kwargs` and the neural rendering resolution from `neural_rendering_resolution`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from ..config import ModelConfig, to_dict
from ..errors import UserError
from .epigraf import Refused, _class, module_state, submodule
from .unpickle import ModuleRecord

SOURCE = "official EG3D snapshot, converted on load"
SR_CLASSES = {"SuperresolutionHybrid2X": "2x", "SuperresolutionHybrid4X": "4x", "SuperresolutionHybrid8XDC": "8x"}
# EG3D does not store the cameras' focal length; these are its datasets' (dataset_preprocessing/, gen_videos.py)
FOCAL_FACES = 4.2647  # FFHQ and AFHQ: 2985.29 / 700
FOCAL_SHAPENET = 1.7074

_BLOCK = re.compile(r"^backbone\.synthesis\.b(\d+)\.(.*)$")
_FC = re.compile(r"^backbone\.mapping\.fc(\d+)\.(.*)$")
_SR = re.compile(r"^superresolution\.(block[01]\..*)$")
_DEC = {"decoder.net.0.": "decoder.fc0.", "decoder.net.2.": "decoder.fc1."}


def is_eg3d(G: Any) -> bool:
    """Whether a generator record is EG3D's TriPlaneGenerator (a backbone and a super-resolution)."""
    return (isinstance(G, ModuleRecord) and submodule(G, "backbone") is not None
            and submodule(G, "superresolution") is not None)


def _refuse(option: str, value: Any, why: str) -> None:
    raise Refused(f"the snapshot uses {option} = {value!r}, which EpiGRAF Studio cannot render faithfully "
                  f"({why}); it was not loaded")


def generator_config(G: ModuleRecord) -> ModelConfig:
    """Our ModelConfig (family 'eg3d') for an official TriPlaneGenerator record."""
    st = G.state
    rk = dict(st.get("rendering_kwargs") or {})
    if not rk:
        raise UserError("the snapshot's generator carries no rendering_kwargs: not an EG3D snapshot")
    _check_rendering(rk)
    cfg = ModelConfig(name="official-eg3d")
    g = cfg.generator
    g.family = "eg3d"
    g.z_dim, g.w_dim = int(st["z_dim"]), int(st["w_dim"])
    cfg.img_resolution = int(rk.get("image_resolution", st.get("img_resolution", 512)))
    weights = module_state(G)
    mapping = submodule(G, "backbone.mapping")
    mst = mapping.state if mapping is not None else {}
    g.mapping_layers = int(mst.get("num_layers", 2))
    g.w_avg_beta = float(mst.get("w_avg_beta", 0.998))
    fc0 = weights.get("backbone.mapping.fc0.weight")
    g.mapping_hidden = int(fc0.shape[0]) if fc0 is not None and g.mapping_layers > 1 else 0
    res = [int(m.group(1)) for k in weights if (m := _BLOCK.match(k))]
    if not res:
        raise UserError("the snapshot's EG3D backbone has no synthesis blocks: the file is incomplete")
    g.plane_res = max(res)
    out_ch = weights[f"backbone.synthesis.b{g.plane_res}.torgb.weight"].shape[0]
    if out_ch % 3:
        _refuse("the backbone's output channels", out_ch, "three planes of equal width")
    g.plane_channels = out_ch // 3
    bkw = (submodule(G, "backbone").state.get("_init_kwargs") or {})
    g.channel_base, g.channel_max = int(bkw.get("channel_base", 32768)), int(bkw.get("channel_max", 512))
    g.use_noise = True
    g.conv_clamp = float(bkw.get("conv_clamp") or 0.0)
    _check_widths(weights, g)
    g.decoder_hidden = int(weights["decoder.net.0.weight"].shape[0])
    if weights["decoder.net.2.weight"].shape[0] != 33 or g.plane_channels != 32:
        _refuse("the decoder's outputs", int(weights["decoder.net.2.weight"].shape[0]), "32 features and a density")
    if float(rk.get("decoder_lr_mul", 1.0)) != 1.0:
        _refuse("rendering_kwargs.decoder_lr_mul", rk.get("decoder_lr_mul"), "the decoder's gains are those of lr 1")
    g.cube_scale = float(rk.get("box_warp", 1.0)) / 2
    g.density_shift = -1.0
    g.c_scale = float(rk.get("c_scale", 0.0))  # EG3D reads a missing c_scale as 0
    g.pose_cond = not bool(rk.get("c_gen_conditioning_zero", False))
    g.neural_res = int(st.get("neural_rendering_resolution", 64))
    sr = submodule(G, "superresolution")
    kind = SR_CLASSES.get(_class(sr))
    if kind is None:
        _refuse("the super-resolution class", _class(sr), f"only {', '.join(SR_CLASSES)} are implemented")
    g.sr_module = kind
    g.sr_channels = (int(weights["superresolution.block0.conv0.weight"].shape[0]),
                     int(weights["superresolution.block1.conv0.weight"].shape[0]))
    g.sr_antialias = bool(rk.get("sr_antialias", True))
    conv = submodule(G, "superresolution.block0.conv0")
    g.sr_conv_clamp = float((conv.state.get("conv_clamp") if conv is not None else 256) or 0.0)
    r = cfg.render
    r.num_coarse, r.num_fine = int(rk["depth_resolution"]), int(rk["depth_resolution_importance"])
    r.background = "white" if rk.get("white_back", False) else "black"
    r.skip_empty = False
    _camera_section(cfg, rk)
    return cfg


def _check_rendering(rk: dict) -> None:
    if rk.get("clamp_mode", "softplus") != "softplus":
        _refuse("rendering_kwargs.clamp_mode", rk.get("clamp_mode"), "density is softplus(raw - 1)")
    if rk.get("disparity_space_sampling", False):
        _refuse("rendering_kwargs.disparity_space_sampling", True, "depths are sampled linearly")
    if rk.get("ray_start") == "auto" or rk.get("ray_end") == "auto":
        _refuse("rendering_kwargs.ray_start/ray_end", "auto", "fixed ray bounds only")
    for key in ("depth_resolution", "depth_resolution_importance", "ray_start", "ray_end"):
        if key not in rk:
            raise UserError(f"the snapshot's rendering_kwargs lack '{key}': not an EG3D snapshot of a known layout")
    if rk.get("superresolution_noise_mode", "none") != "none":
        _refuse("rendering_kwargs.superresolution_noise_mode", rk.get("superresolution_noise_mode"),
                "the super-resolution runs without noise")


def _check_widths(weights: dict, g) -> None:
    """The backbone's block widths follow min(channel_base / res, channel_max), as our synthesis builds them."""
    for r in (2 ** i for i in range(2, int(math.log2(g.plane_res)) + 1)):
        w = weights.get(f"backbone.synthesis.b{r}.conv1.weight")
        want = min(g.channel_base // r, g.channel_max)
        if w is None or w.shape[0] != want:
            _refuse(f"backbone block b{r}'s width", None if w is None else int(w.shape[0]),
                    f"expected {want} from channel_base {g.channel_base} and channel_max {g.channel_max}")


def _camera_section(cfg: ModelConfig, rk: dict) -> None:
    """The viewer's default camera: EG3D's frontal pose about its pivot, its ray bounds, its dataset's focal."""
    c = cfg.camera
    shapenet = bool(rk.get("white_back", False))
    c.fov_deg = math.degrees(2 * math.atan(0.5 / (FOCAL_SHAPENET if shapenet else FOCAL_FACES)))
    c.radius = float(rk.get("avg_camera_radius", 2.7))
    c.look_at = tuple(float(x) for x in rk.get("avg_camera_pivot", (0.0, 0.0, 0.2)))
    c.near, c.far = float(rk["ray_start"]), float(rk["ray_end"])
    c.yaw_mean, c.pitch_mean = math.pi / 2, math.pi / 2  # frontal: the camera on +z
    if shapenet:
        c.dist, c.yaw_std, c.pitch_std = "spherical_uniform", math.pi, math.pi / 2
    else:
        c.dist, c.yaw_std, c.pitch_std = "gaussian", 0.3, 0.155


def generator_state(G: ModuleRecord) -> dict[str, torch.Tensor]:
    """Our state dict from an official EG3D TriPlaneGenerator record (names mapped, constants dropped)."""
    out = {}
    for k, v in module_state(G).items():
        if k.endswith("resample_filter") or k == "dataset_label_std":
            continue
        if m := _BLOCK.match(k):
            out[f"synthesis.blocks.{int(math.log2(int(m.group(1)))) - 2}.{m.group(2)}"] = v
        elif m := _FC.match(k):
            out[f"mapping_network.layers.{m.group(1)}.{m.group(2)}"] = v
        elif k.startswith("backbone.mapping."):
            out["mapping_network." + k[len("backbone.mapping."):]] = v
        elif m := _SR.match(k):
            out[f"superresolution.{m.group(1)}"] = v
        elif k[:14] in _DEC:
            out[_DEC[k[:14]] + k[14:]] = v
        else:
            raise UserError(f"the snapshot's generator has a weight '{k}' this importer does not know: "
                            f"its architecture differs from EG3D's; it was not loaded")
    return out


def discriminator_state(D: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Our DualDiscriminator's state dict from an official DualDiscriminator record (the names are
    the same; constants dropped) and its constructor's arguments read from the record."""
    if not isinstance(D, ModuleRecord) or D.class_name != "DualDiscriminator":
        raise UserError(f"the snapshot's D is a {_class(D)}, not EG3D's DualDiscriminator")
    kw = dict(D.state.get("_init_kwargs") or {})
    epi = kw.get("epilogue_kwargs") or {}
    if (kw.get("mapping_kwargs") or {}) or int(epi.get("mbstd_num_channels", 1)) != 1:
        _refuse("D's mapping/epilogue kwargs", {**(kw.get("mapping_kwargs") or {}), **epi},
                "the default 8-layer mapping and a 1-channel minibatch-std")
    args = {"c_dim": int(kw.get("c_dim", 25)), "img_resolution": int(kw.get("img_resolution", 512)),
            "channel_base": int(kw.get("channel_base", 32768)), "channel_max": int(kw.get("channel_max", 512)),
            "conv_clamp": float(kw.get("conv_clamp") or 0.0), "mbstd_group": int(epi.get("mbstd_group_size", 4)),
            "disc_c_noise": float(kw.get("disc_c_noise", 0.0) or 0.0)}
    return {k: v for k, v in module_state(D).items() if not k.endswith("resample_filter")}, args


def convert(snapshot: Any, what: str, training_state: bool = False) -> tuple[dict, dict[str, Any], dict]:
    """A loaded official EG3D snapshot -> (our config dict, {"G_ema": state, ...}, meta); with
    training_state also "G", "D" (EG3D does not save optimiser state) and "progress" (from 0: EG3D's
    snapshot does not record its image count)."""
    G_ema = snapshot.get("G_ema") if isinstance(snapshot, dict) else None
    if not is_eg3d(G_ema):
        raise UserError(f"{what} holds no EG3D generator under 'G_ema'")
    cfg = generator_config(G_ema)
    entries: dict[str, Any] = {"G_ema": generator_state(G_ema)}
    D = snapshot.get("D")
    if isinstance(D, ModuleRecord) and D.class_name == "DualDiscriminator":
        d_state, args = discriminator_state(D)
        d = cfg.discriminator
        d.variant, d.camera_cond = "dual", args["c_dim"] > 0
        d.channel_base, d.channel_max, d.conv_clamp, d.mbstd_group = (args["channel_base"], args["channel_max"],
                                                                     args["conv_clamp"], args["mbstd_group"])
        if training_state:
            entries["D"] = d_state
    if training_state and is_eg3d(snapshot.get("G")):
        entries["G"] = generator_state(snapshot["G"])
        entries["progress"] = {"cur_nimg": 0, "cur_tick": 0, "batch_idx": 0, "tick_start_nimg": 0, "nan_skipped": 0}
    meta: dict[str, Any] = {}
    std = module_state(G_ema).get("dataset_label_std")
    if torch.is_tensor(std):
        meta["dataset_label_std"] = [float(x) for x in std.reshape(-1)]
    return to_dict(cfg), entries, meta
