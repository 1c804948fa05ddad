"""Official EpiGRAF snapshot records -> our config and state dicts (nothing from the file executes).

The official generator (universome/epigraf, `src/training/networks_epigraf.py`) is the same model
as ours under other names; this module maps

    mapping.fc{i}.*                         -> mapping_network.layers.{i}.*
    mapping.embed.*, mapping.w_avg          -> mapping_network.embed.*, mapping_network.w_avg
    mapping.mean_camera_pose                -> camera.yaw_mean / camera.pitch_mean (the default pose)
    synthesis.tri_plane_decoder.b{R}.*      -> synthesis.blocks.{log2(R) - 2}.*
    synthesis.tri_plane_mlp.model.{i}.*     -> decoder.fc{i}.*
    synthesis.bg_model.*                    -> background.*  (the NeRF++ background INR)

(`resample_filter` buffers are constants and dropped), and reads the architecture from the
pickled, unresolved OmegaConf tree (`model.generator`, `dataset`). Options our generator cannot
compute are refused with one line naming the option: a model is never loaded to render wrongly.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from ..config import ModelConfig, to_dict
from ..errors import UserError
from .config_tree import get, root_of, to_plain
from .unpickle import ModuleRecord, Record

SOURCE = "official EpiGRAF snapshot, converted on load"


def module_state(rec: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of a module record and its children, by dotted name."""
    st = rec.state if isinstance(rec, (ModuleRecord, Record)) else None
    if not isinstance(st, dict):
        return {}
    out: dict[str, torch.Tensor] = {}
    skip = st.get("_non_persistent_buffers_set") or set()
    for k, v in (st.get("_parameters") or {}).items():
        if v is not None:
            out[prefix + k] = v.detach().float() if torch.is_tensor(v) else v  # fresh from the unpickler: no copy
    for k, v in (st.get("_buffers") or {}).items():
        if v is not None and k not in skip:
            out[prefix + k] = v.detach() if torch.is_tensor(v) else v
    for k, v in (st.get("_modules") or {}).items():
        if v is not None:
            out.update(module_state(v, f"{prefix}{k}."))
    return out


def submodule(rec: Any, path: str) -> Any:
    """The child record at a dotted path, or None."""
    for k in path.split("."):
        mods = rec.state.get("_modules") if isinstance(getattr(rec, "state", None), dict) else None
        if not mods or mods.get(k) is None:
            return None
        rec = mods[k]
    return rec


def _class(rec: Any) -> str:
    return getattr(rec, "class_name", None) or getattr(rec, "qualname", "?")


class Refused(UserError):
    """An official option that our generator cannot compute."""


def _require(ok: bool, option: str, value: Any, why: str) -> None:
    if not ok:
        raise Refused(f"the snapshot uses {option} = {value!r}, which EpiGRAF Studio cannot render faithfully "
                      f"({why}); it was not loaded")


def generator_config(G: ModuleRecord) -> tuple[ModelConfig, dict]:
    """Our ModelConfig for an official Generator record; also the resolved official config tree."""
    cfg_rec = G.state.get("cfg")
    if cfg_rec is None:
        raise UserError("the snapshot's generator carries no config (cfg): not an EpiGRAF snapshot")
    root = to_plain(root_of(cfg_rec))
    if not isinstance(root, dict) or "model" not in root:
        raise UserError("the snapshot's config has no 'model' section: not an EpiGRAF snapshot")
    gen = get(root, "model.generator")
    ds = gen.get("dataset") if isinstance(gen.get("dataset"), dict) else get(root, "dataset", {})
    _refuse_unsupported(gen, ds)
    cfg = ModelConfig(name="official-epigraf")
    cfg.img_resolution = int(ds.get("resolution", G.state.get("img_resolution", 256)))
    mapping = submodule(G, "mapping")
    mst = mapping.state if mapping is not None else {}
    _generator_section(cfg, G, gen, ds, mst)
    _background_section(cfg, gen.get("bg_model", {}) or {})
    r = cfg.render
    r.num_coarse = r.num_fine = int(gen.get("num_ray_steps", 48))
    r.background = "white" if ds.get("white_back", False) else "zero"
    r.far_opaque = cfg.generator.bg_model == "none"
    r.pdf_eps = 2e-5
    _camera_section(cfg, ds.get("camera", {}) or {}, mst.get("_buffers", {}).get("mean_camera_pose"))
    _training_config(cfg, root)
    return cfg, root


def _refuse_unsupported(gen: dict, ds: dict) -> None:
    """One line naming the first official option our generator cannot compute."""
    tp = gen.get("tri_plane", {}) or {}
    mlp = tp.get("mlp", {}) or {}
    bg = gen.get("bg_model", {}) or {}
    _require(gen.get("backbone", "stylegan2") == "stylegan2", "model.generator.backbone", gen.get("backbone"),
             "only the StyleGAN2 tri-plane backbone is implemented")
    _require(gen.get("clamp_mode", "softplus") == "softplus", "model.generator.clamp_mode", gen.get("clamp_mode"),
             "density is softplus(raw + shift)")
    _require(not tp.get("has_view_cond", False), "model.generator.tri_plane.has_view_cond", tp.get("has_view_cond"),
             "no view-direction conditioning")
    _require(not tp.get("posenc_period_len", 0), "model.generator.tri_plane.posenc_period_len",
             tp.get("posenc_period_len"), "no positional encoding of the points")
    _require(mlp.get("n_layers", 2) == 2, "model.generator.tri_plane.mlp.n_layers", mlp.get("n_layers"),
             "the decoder has two layers")
    _require(not ds.get("last_back", False), "dataset.last_back", ds.get("last_back"),
             "the last sample's colour as background is not implemented")
    _require(not float(gen.get("camera_cond_noise_std", 0.0) or 0.0), "model.generator.camera_cond_noise_std",
             gen.get("camera_cond_noise_std"), "the reference adds this noise to the pose even when evaluating")
    cam = ds.get("camera")
    if not isinstance(cam, dict) or not {"fov", "ray_start", "ray_end"} <= cam.keys() or "cube_scale" not in ds:
        raise Refused("the snapshot's dataset config has no camera (fov, ray_start, ray_end) or cube_scale where "
                      "this importer reads them (dataset.camera.*: an older or newer layout of the official "
                      "config); it was not loaded")
    _require(cam.get("dist_type", "spherical") == "spherical", "dataset.camera.dist_type", cam.get("dist_type"),
             "cameras are on a sphere around the origin")
    _require(bg.get("type") in (None, "sphere"), "model.generator.bg_model.type", bg.get("type"),
             "only the inverse-sphere (NeRF++) background is implemented")
    if bg.get("type") == "sphere":
        _require(int(bg.get("coord_dim", 4)) == 4, "model.generator.bg_model.coord_dim", bg.get("coord_dim"),
                 "the background reads (x', y', z', 1/r)")
        _require(int(bg.get("output_channels", 4)) == 4, "model.generator.bg_model.output_channels",
                 bg.get("output_channels"), "the background outputs rgb and density")
        _require(not (bg.get("fmm", {}) or {}).get("enabled", False), "model.generator.bg_model.fmm.enabled", True,
                 "factorised multiplicative modulation is not implemented")
        _require(int(bg.get("num_fp16_blocks", 0)) == 0, "model.generator.bg_model.num_fp16_blocks",
                 bg.get("num_fp16_blocks"), "the background is computed in float32")


def _generator_section(cfg: ModelConfig, G: ModuleRecord, gen: dict, ds: dict, mst: dict) -> None:
    """Mapping, synthesis and decoder sizes (from the records where they hold them, else the config)."""
    tp = gen.get("tri_plane", {}) or {}
    g = cfg.generator
    g.z_dim, g.w_dim = int(G.state["z_dim"]), int(G.state["w_dim"])
    g.c_dim = int(G.state.get("c_dim", ds.get("c_dim", 0)) or 0)
    g.mapping_layers = int(mst.get("num_layers", gen.get("map_depth", 2)))
    g.w_avg_beta = float(mst.get("w_avg_beta", 0.998))
    g.pose_cond = bool(gen.get("camera_cond", False))
    g.plane_res = int(tp.get("res", 512))
    g.plane_channels = int(tp.get("feat_dim", 32))
    g.channel_base = int(round(float(gen.get("cbase", 32768)) * float(gen.get("fmaps", 1.0))))
    g.channel_max = int(gen.get("cmax", 512))
    g.use_noise = bool(gen.get("use_noise", True))
    g.decoder_hidden = int((tp.get("mlp", {}) or {}).get("hid_dim", 64))
    g.cube_scale = float(ds.get("cube_scale", 0.2))
    g.density_shift = float(gen.get("density_shift", 0.0))
    g.density_noise_init = float(gen.get("nerf_noise_std_init", 1.0))
    g.density_noise_kimg = float(gen.get("nerf_noise_kimg_growth", 5000))
    layer = submodule(G, "synthesis.tri_plane_decoder.b4.conv1")
    clamp = layer.state.get("conv_clamp", 256) if layer is not None else 256
    g.conv_clamp = float(clamp) if clamp is not None else 0.0  # None where training.fp32 was set


def _background_section(cfg: ModelConfig, bg: dict) -> None:
    if bg.get("type") != "sphere":
        return
    g = cfg.generator
    g.bg_model = "sphere"
    g.bg_blocks = int(bg.get("num_blocks", 2))
    widths = {min(int(bg.get("cbase", 32768)) // 2 ** (i + 2), int(bg.get("cmax", 128))) for i in range(g.bg_blocks)}
    _require(len(widths) == 1, "model.generator.bg_model.cbase", bg.get("cbase"),
             "the background MLP has one width in every block")
    g.bg_channels = widths.pop()
    g.bg_period = float(bg.get("posenc_period_len", 64.0))
    g.bg_steps = int(bg.get("num_steps", 8))
    g.bg_start = float(bg.get("start", 1.0))


def _camera_section(cfg: ModelConfig, cam: dict, mean_pose: Any) -> None:
    c = cfg.camera
    c.fov_deg = float(cam.get("fov", 12.0))
    c.radius = float(cam.get("radius", 1.0))
    c.near, c.far = float(cam.get("ray_start", 0.88)), float(cam.get("ray_end", 1.12))
    dist = cam.get("dist", "gaussian")
    if dist in ("gaussian", "uniform", "spherical_uniform"):
        c.dist = dist
        c.yaw_mean = float(cam.get("horizontal_mean", 0.0))
        c.yaw_std = float(cam.get("horizontal_stddev", c.yaw_std))
        c.pitch_mean = float(cam.get("vertical_mean", math.pi / 2))
        c.pitch_std = float(cam.get("vertical_stddev", c.pitch_std))
    else:  # 'custom': the dataset's own poses during training; a Gaussian prior around their mean here
        c.dist = "gaussian"
        cfg.train.camera_source = "dataset"
    if cfg.generator.pose_cond and torch.is_tensor(mean_pose):
        # the reference conditions on mapping.mean_camera_pose at evaluation: make it our default pose
        c.yaw_mean, c.pitch_mean = float(mean_pose[0]), float(mean_pose[1])


def _training_config(cfg: ModelConfig, root: dict) -> None:
    """The discriminator's shape and the training settings of the official run, so that a fine-tune
    (`core.train --resume`) builds the D the run had and continues its schedules."""
    dcfg = get(root, "model.discriminator", {}) or {}
    d = cfg.discriminator
    d.channel_base = int(round(float(dcfg.get("cbase", 32768)) * float(dcfg.get("fmaps", 0.5))))
    d.channel_base = max(d.channel_base, cfg.img_resolution)  # at least one channel in the first block
    d.channel_max = int(dcfg.get("cmax", 512))
    d.variant = "epigraf" if dcfg.get("hyper_mod", True) else "standard"
    d.mbstd_group = int(dcfg.get("mbstd_group_size", 4))
    d.camera_cond = bool(dcfg.get("camera_cond", False))
    d.camera_encoding = "raw" if dcfg.get("camera_cond_raw", False) else "fourier"
    d.camera_drop_p = float(dcfg.get("camera_cond_drop_p", d.camera_drop_p))
    t = cfg.train
    tr = get(root, "training", {}) or {}
    if tr.get("fp32", False):  # the official run trained D in float32 without the activation clamp
        d.num_fp16_res, d.conv_clamp = 0, 0.0
    patch = tr.get("patch", {}) or {}
    if patch.get("enabled", True):
        t.patch_res = int(patch.get("resolution", 64))
        t.patch_dist = {"beta": "beta", "uniform": "uniform"}.get(patch.get("distribution"), t.patch_dist)
        t.patch_beta_start = float(patch.get("beta_val_start", t.patch_beta_start))
        t.patch_beta_end = float(patch.get("beta_val_end", t.patch_beta_end))
        t.patch_anneal_kimg = float(patch.get("anneal_kimg", t.patch_anneal_kimg))
        t.patch_group = d.mbstd_group
    else:
        t.patch_dist, t.patch_res = "full", cfg.img_resolution
    t.batch = int(tr.get("batch_size", t.batch))
    t.mirror = bool(tr.get("mirror", True))
    t.r1_gamma = _gamma(tr.get("gamma", "auto"), t.r1_gamma)
    t.augment = "ada" if (tr.get("augment", {}) or {}).get("mode", "ada") == "ada" else "none"
    t.ada_target = float(tr.get("target", t.ada_target))
    gen_opt = get(root, "model.generator.optim", {}) or {}
    t.g_lr = float(gen_opt.get("lr", t.g_lr))
    t.d_lr = float(dcfg.get("optim", {}).get("lr", t.d_lr)) if isinstance(dcfg.get("optim"), dict) else t.d_lr
    t.ema_kimg = float(get(root, "model.generator.ema_multiplier", 0.3125)) * t.batch
    loss = get(root, "model.loss_kwargs", {}) or {}
    t.blur_init_sigma = float(loss.get("blur_init_sigma", t.blur_init_sigma))
    t.blur_fade_kimg = float(loss.get("blur_fade_kimg", t.blur_fade_kimg))


def _gamma(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


_BLOCK = re.compile(r"^synthesis\.tri_plane_decoder\.b(\d+)\.(.*)$")
_MLP = re.compile(r"^synthesis\.tri_plane_mlp\.model\.(\d+)\.(.*)$")
_FC = re.compile(r"^mapping\.fc(\d+)\.(.*)$")


def generator_state(G: ModuleRecord) -> dict[str, torch.Tensor]:
    """Our generator state dict from an official Generator record (names mapped, constants dropped)."""
    out = {}
    for k, v in module_state(G).items():
        if k.endswith("resample_filter") or k.endswith("fourier_coefs") or k == "mapping.mean_camera_pose":
            continue  # constants (the FIR filter, the Fourier frequencies) and the config's mean pose
        if m := _BLOCK.match(k):
            out[f"synthesis.blocks.{int(math.log2(int(m.group(1)))) - 2}.{m.group(2)}"] = v
        elif m := _MLP.match(k):
            out[f"decoder.fc{m.group(1)}.{m.group(2)}"] = v
        elif m := _FC.match(k):
            out[f"mapping_network.layers.{m.group(1)}.{m.group(2)}"] = v
        elif k.startswith("mapping."):
            out["mapping_network." + k[len("mapping."):]] = v
        elif k.startswith("synthesis.bg_model."):
            out["background." + k[len("synthesis.bg_model."):]] = v  # same block/layer names as ours
        else:
            raise UserError(f"the snapshot's generator has a weight '{k}' this importer does not know: "
                            f"its architecture differs from EpiGRAF's; it was not loaded")
    return out


def check_generator(G: Any, what: str) -> ModuleRecord:
    """The record of an official EpiGRAF generator, or a one-line error saying what the file holds."""
    if not isinstance(G, ModuleRecord):
        raise UserError(f"{what} holds no generator module under 'G_ema': not an official EpiGRAF snapshot")
    if submodule(G, "synthesis.tri_plane_decoder") is None:
        if submodule(G, "backbone") is not None or submodule(G, "superresolution") is not None:
            raise UserError(f"{what} is an EG3D snapshot ({_class(G)} with a super-resolution network): "
                            f"EpiGRAF Studio reads EpiGRAF snapshots only so far")
        raise UserError(f"{what} holds a {_class(G)} without a tri-plane decoder: not an official EpiGRAF snapshot")
    return G


def convert(snapshot: Any, what: str, training_state: bool = False) -> tuple[dict, dict[str, Any]]:
    """A loaded official snapshot -> (our config dict, {"G_ema": state, ...}); with training_state
    also "G", "augment" and "progress" (the discriminator is not converted)."""
    if not isinstance(snapshot, dict) or "G_ema" not in snapshot:
        raise UserError(f"{what} is a pickle without 'G_ema': not an official EpiGRAF snapshot")
    G_ema = check_generator(snapshot["G_ema"], what)
    cfg, _ = generator_config(G_ema)
    entries: dict[str, Any] = {"G_ema": generator_state(G_ema)}
    if training_state:
        if not isinstance(snapshot.get("G"), ModuleRecord):
            raise UserError(f"{what} has no training generator 'G': it cannot be fine-tuned")
        entries["G"] = generator_state(check_generator(snapshot["G"], what))
        stats = snapshot.get("stats") or {}
        nimg = int(stats.get("cur_nimg", 0)) if isinstance(stats, dict) else 0
        entries["progress"] = {"cur_nimg": nimg, "cur_tick": int(stats.get("cur_tick", 0) or 0),
                               "batch_idx": int(stats.get("batch_idx", 0) or 0), "tick_start_nimg": nimg,
                               "nan_skipped": 0}
        p = augment_probability(snapshot.get("augment_pipe"))
        if p is not None:  # in the form of core.training.augment.AdaController.state_dict
            entries["augment"] = {"ada": {"p": p, "steps": entries["progress"]["batch_idx"], "sign_sum": 0.0,
                                          "sign_count": 0, "last_rt": None}}
    return to_dict(cfg), entries


def augment_probability(pipe: Any) -> float | None:
    """The ADA probability p of an official AugmentPipe record (a buffer), or None."""
    if not isinstance(pipe, ModuleRecord):
        return None
    p = (pipe.state.get("_buffers") or {}).get("p")
    return float(p.reshape(-1)[0]) if torch.is_tensor(p) and p.numel() else None
