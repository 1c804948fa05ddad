"""Typed configuration: dataclasses with a doc string per field, and named presets.

Every field is declared with `doc(default, "what it means")`; the text lives in the field's metadata
so command-line help and the viewer's forms can be generated from the same source. The resolved
config travels inside every checkpoint (`to_dict` / `from_dict`).

Numbers in `ffhq512` and `megascans256` are the EpiGRAF reference's (docs/spec.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints

from .config_3dgp import DepthConfig, KDConfig
from .errors import UserError


def doc(default: Any, text: str) -> Any:
    """A dataclass field with a default and a documentation string (kept in its metadata)."""
    return field(default=default, metadata={"doc": text})


def choices_of(cls_or_obj: Any, name: str) -> tuple[str, ...]:
    """The allowed values of a choice field (typed Literal[...]), or () for any other field."""
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    hint = get_type_hints(cls).get(name)
    return tuple(get_args(hint)) if get_origin(hint) is Literal else ()


def check_choices(obj: Any, path: str = "") -> None:
    """Every choice field of a config (recursively) holds one of its allowed values, else one line."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_choices(value, f"{path}{f.name}.")
            continue
        allowed = choices_of(obj, f.name)
        if allowed and value not in allowed:
            raise UserError(f"config key '{path}{f.name}' is {value!r}: choose one of {', '.join(allowed)}")


def field_doc(cls_or_obj: Any, name: str) -> str:
    """The documentation string of a config field."""
    for f in dataclasses.fields(cls_or_obj):
        if f.name == name:
            return f.metadata.get("doc", "")
    raise KeyError(name)


@dataclass
class GeneratorConfig:
    """Mapping network, StyleGAN2 tri-plane synthesis and the tri-plane decoder."""

    family: Literal["epigraf", "eg3d"] = doc(
        "epigraf",
        "Model family: 'epigraf' (pure NeRF renders at the image resolution; xy/xz/yz planes, align_corners "
        "True, density softplus(raw + shift) per sample) or 'eg3d' (a low-resolution neural render of 32 "
        "features upsampled by the super-resolution network; EG3D's conventions: xy/xz/zx planes, "
        "align_corners False, softplus(raw - 1) at interval midpoints, the camera label as conditioning; "
        "docs/eg3d.md).")
    z_dim: int = doc(512, "Dimensionality of the latent z (sampled from N(0, I)).")
    w_dim: int = doc(512, "Dimensionality of the intermediate latent w.")
    c_dim: int = doc(0, "Dimensionality of the class label (0 = unconditional).")
    mapping_layers: int = doc(2, "Fully-connected layers in the mapping network.")
    mapping_hidden: int = doc(0, "Width of the mapping network's hidden layers (0 = w_dim).")
    mapping_lr_mult: float = doc(0.01, "Learning-rate multiplier of the mapping network.")
    w_avg_beta: float = doc(0.998, "Decay of the running mean of w used for truncation.")
    pose_cond: bool = doc(False, "Generator pose conditioning: yaw/pitch appended to the label c.")
    plane_res: int = doc(512, "Resolution Rp of each tri-plane (synthesis output size).")
    plane_channels: int = doc(32, "Feature channels per plane (three planes are produced).")
    channel_base: int = doc(32768, "Synthesis channels at resolution r are min(channel_base / r, channel_max).")
    channel_max: int = doc(512, "Upper bound on synthesis channels.")
    use_noise: bool = doc(True, "Per-pixel noise inputs in the synthesis network.")
    conv_clamp: float = doc(256.0, "Clamp the synthesis layers' activations and the ToRGB outputs to +-this, as "
                                   "the reference does (0 = off; checkpoints of format version 1 had it off).")
    decoder_hidden: int = doc(64, "Hidden width of the tri-plane decoder MLP (planes -> hidden -> rgb+density).")
    cube_scale: float = doc(0.2, "Half side of the world cube covered by the tri-planes (points are divided by it).")
    density_shift: float = doc(0.0, "sigma = softplus(raw + shift); EpiGRAF uses 0, EG3D -1.")
    bg_model: Literal["none", "sphere"] = doc("none", "Background beyond the unit sphere: 'none', or 'sphere' (EpiGRAF's NeRF++ "
                                "background: a modulated MLP on inverse-depth samples; needs render.far_opaque "
                                "false).")
    bg_channels: int = doc(128, "Width of the background MLP.")
    bg_blocks: int = doc(2, "Blocks of the background MLP (the first has one layer, the others two).")
    bg_period: float = doc(64.0, "Positional-encoding period of the background: ceil(log2 period) frequencies.")
    bg_steps: int = doc(8, "Inverse-depth samples per ray in the background.")
    bg_start: float = doc(1.0, "First (nearest) inverse depth of the background samples (1 = the unit sphere).")
    neural_res: int = doc(64, "EG3D: resolution of the neural render (the 32-feature image the super-resolution "
                              "reads); the final image has the model's img_resolution.")
    sr_module: Literal["2x", "4x", "8x"] = doc(
        "2x", "EG3D super-resolution: '2x' (64 -> 128), '4x' (128 -> 256) or '8x' (128 -> 512, EG3D's "
              "SuperresolutionHybrid8XDC); its input resolution is the output's 1/2, 1/2 and 1/4.")
    sr_channels: tuple[int, int] = doc((128, 64), "EG3D: channels of the super-resolution's two blocks (official: "
                                                  "128, 64 for 2x/4x; 256, 128 for 8x).")
    sr_antialias: bool = doc(True, "EG3D: resize the neural render to the super-resolution's input with antialiasing.")
    sr_conv_clamp: float = doc(256.0, "EG3D: clamp of the super-resolution layers' activations (0 = off).")
    c_scale: float = doc(1.0, "EG3D: the camera label is multiplied by this before the mapping network.")
    density_noise_init: float = doc(1.0, "Std of Gaussian noise on raw density at the start of training.")
    density_noise_kimg: float = doc(5000.0, "kimg over which the density noise anneals linearly to 0.")


@dataclass
class RenderConfig:
    """Ray sampling and compositing."""

    num_coarse: int = doc(48, "Stratified samples per ray in the coarse pass.")
    num_fine: int = doc(48, "Importance samples per ray drawn from the coarse weights (0 = coarse only).")
    background: Literal["white", "black", "zero"] = doc(
        "zero",
        "Colour behind the object, in the [-1, 1] image range: 'white' (+1), 'black' (-1) or 'zero' "
        "(0, the reference's default when white_back is off).",
    )
    far_opaque: bool = doc(
        True,
        "Reference behaviour: the last sample's interval is 1e10 long, so every ray becomes opaque at "
        "the far bound. False: the last interval is 1e-3 and the background shows through.",
    )
    kernel_impl: Literal["auto", "reference", "triton"] = doc(
        "auto",
        "Render ops (core.kernels): 'auto' = the fused Triton kernels for CUDA tensors when triton is "
        "installed, the fused Numba loop for marching on a CPU, else the PyTorch reference (said once in "
        "the log); 'reference' = always PyTorch (the ground truth); 'triton' = always Triton (an error where it cannot run).",
    )
    fused_march: bool = doc(
        True,
        "Inference with the Triton kernels: march each ray in one fused kernel per pass (nothing per "
        "sample stored; the fine pass evaluates the coarse samples again), or False: evaluate the field "
        "once at the coarse and once at the fine samples (query_points) and composite them (colour and "
        "density stored per sample). `python -m core.bench kernels` times both.",
    )
    stop_transmittance: float = doc(
        0.0,
        "Inference only: stop marching a ray once its transmittance falls below this (early ray "
        "termination; 0 = off, e.g. 1e-3 for the viewer). Never applied while gradients are recorded.",
    )
    pdf_eps: float = doc(
        2e-5,
        "Added to the coarse weights before the importance-sampling CDF. The reference adds 1e-5 twice (in the "
        "generator and again in sample_pdf), hence 2e-5; checkpoints of format version 1 used 1e-5.")
    chunk_rays: int = doc(0, "Rays rendered per chunk at inference (bounds peak memory); 0 = by device: "
                             "1024 on CPU (fewer allocations, measured fastest), 65536 on GPU.")
    fold_decoder: bool = doc(
        True,
        "Inference with the PyTorch reference ops: push the planes through the decoder's first layer once "
        "per latent from its second render on (exact: that layer is linear and the tri-plane feature a mean), so each sample skips a "
        "matrix product but reads wider planes. The Triton kernels never fold.")
    skip_empty: bool = doc(
        True,
        "Inference renders (no gradients, no density noise, deterministic) march only through the occupied "
        "cells of a per-latent occupancy grid, `skip_sample_ratio` of the samples, with early termination, instead "
        "of the coarse + importance passes; models that are fog everywhere keep the dense path "
        "(docs/rendering.md). False: always the dense path.")
    skip_sample_ratio: float = doc(
        1 / 3, "Samples per ray when skipping, as a fraction of the call's num_coarse + num_fine, spread over the "
               "ray's occupied length by the grid's predicted weights (demo: 16 for 24 + 24, with a higher PSNR "
               "against a 192 + 192 reference than the dense path; docs/benchmarks.md).")
    skip_grid_res: int = doc(64, "Cells per side of the occupancy grid over the cube the camera prior's rays reach.")
    skip_max_loss: float = doc(
        1e-3, "Empty-cell threshold in transmittance terms: a cell is empty when its density is below the "
              "sigma at which a ray crossing the whole [near, far] range would lose this much transmittance.")
    skip_dilation: int = doc(1, "Cells the occupied set is grown by, for thin features between grid nodes.")
    skip_max_occupied: float = doc(0.5, "Occupied fraction of the grid above which a latent counts as fog and "
                                        "keeps the dense path.")
    skip_stop_transmittance: float = doc(1e-3, "Early ray termination of the skipping path: a ray stops once "
                                               "its transmittance falls below this.")


@dataclass
class CameraConfig:
    """The camera prior of the dataset (EpiGRAF's yaw/pitch on a sphere around the look-at point)."""

    fov_deg: float = doc(12.0, "Field of view in degrees (square images).")
    radius: float = doc(1.0, "Distance of the camera from the look-at point.")
    near: float = doc(0.88, "Near bound along the unit ray, at the default radius.")
    far: float = doc(1.12, "Far bound along the unit ray, at the default radius.")
    look_at: tuple[float, float, float] = doc((0.0, 0.0, 0.0), "The point the camera looks at.")
    dist: Literal["gaussian", "uniform", "spherical_uniform", "truncnormal"] = doc(
        "gaussian", "Pose prior: 'gaussian', 'uniform', 'spherical_uniform' (directions uniform over the sphere's "
                    "zone: pitch = arccos(1 - 2v)) or 'truncnormal' (a Gaussian cut at mean +- trunc_stds std). "
                    "The dataset's own per-image poses are chosen by train.camera_source 'dataset'.")
    yaw_mean: float = doc(0.0, "Mean yaw in radians (0 = frontal, camera on +x).")
    yaw_std: float = doc(0.3, "Yaw spread: std (gaussian kinds) or half-range (uniform kinds).")
    pitch_mean: float = doc(math.pi / 2, "Mean pitch in radians (pi/2 = equator).")
    pitch_std: float = doc(0.155, "Pitch spread: std (gaussian kinds) or half-range (uniform kinds).")
    trunc_stds: float = doc(3.0, "'truncnormal' priors are cut at mean +- this many std; a plain Gaussian prior "
                                 "(not cut) spans the same range in the camera generator's [0, 1] normalisation.")
    fov_dist: Literal["fixed", "uniform", "normal", "truncnormal"] = doc(
        "fixed", "Field-of-view prior (3DGP): 'fixed' (fov_deg, EpiGRAF), 'uniform' in [fov_min, fov_max], 'normal' "
                 "N(fov_deg, fov_std) or 'truncnormal' (that Gaussian cut to [fov_min, fov_max]).")
    fov_min: float = doc(10.0, "Lower end of the field of view in degrees ('uniform', 'truncnormal'; 3DGP: 10).")
    fov_max: float = doc(45.0, "Upper end of the field of view in degrees ('uniform', 'truncnormal'; 3DGP: 45, "
                               "21 for stability on ImageNet).")
    fov_std: float = doc(5.0, "Std of the field of view in degrees ('normal', 'truncnormal'; mean fov_deg).")
    lookat_dist: Literal["fixed", "ball"] = doc(
        "fixed", "Look-at prior (3DGP): 'fixed' (the look_at point, EpiGRAF) or 'ball' (look_at plus an offset of "
                 "length ~ U[0, lookat_radius_max] in a direction uniform over the sphere). The camera origin stays "
                 "on the sphere of the given radius around look_at.")
    lookat_radius_max: float = doc(0.2, "Largest look-at offset of the 'ball' look-at prior (3DGP: 0.2).")


@dataclass
class CameraGenConfig:
    """3DGP's learned camera distribution: a camera generator maps a camera of the prior, z and the class to the
    camera that is rendered, regularised towards the prior (core/networks/camera_generator.py,
    core/training/camera_reg.py, docs/3dgp.md)."""

    enabled: bool = doc(False, "Learn the camera distribution with a camera generator (3DGP). Its input cameras come "
                               "from the camera prior, or with train.camera_source 'dataset' from the dataset's poses.")
    hidden: int = doc(256, "Hidden width of the camera generator's two MLPs.")
    embed_dim: int = doc(16, "Width of the z and class embeddings of the camera generator.")
    lr_mult: float = doc(0.1, "Learning-rate multiplier of the camera generator's layers.")
    emd_yaw: float = doc(2.0, "Weight of the earth mover's distance between the prior's and the learned origin yaws.")
    emd_pitch: float = doc(2.0, "Weight of the earth mover's distance of the origin pitch.")
    emd_radius: float = doc(0.0, "Weight of the earth mover's distance of the origin radius (not learned).")
    emd_fov: float = doc(1e-4, "Weight of the earth mover's distance of the field of view (in degrees).")
    emd_lookat: float = doc(1e-4, "Weight of the earth mover's distance of each look-at parameter (yaw, pitch, radius).")
    emd_samples: int = doc(64, "Prior and learned cameras compared per step by the earth mover's distances.")
    emd_per_class: bool = doc(
        False, "Draw the learned cameras of the earth mover's distances all of one random class per step, so that "
               "each class's camera distribution is pulled to the prior (an extension). Off: random classes (3DGP), "
               "which a class-conditioned origin can satisfy by giving each class one view of its own.")
    ramp_kimg: float = doc(10000.0, "kimg over which the earth mover's distance term ramps linearly from 0 to 1 "
                                    "(3DGP: 10000 on ImageNet, 3000 on the smaller datasets).")
    mean_forcing: float = doc(10.0, "Weight of the mean forcing: the distance between the mean learned origin "
                                    "(yaw, pitch) and the prior's mean (0 = off).")
    mean_forcing_samples: int = doc(256, "Learned cameras averaged by the mean forcing per step.")


@dataclass
class DiscriminatorConfig:
    """The patch discriminator (R, r and c_dim come from the model, train and generator sections)."""

    variant: Literal["epigraf", "standard", "dual"] = doc(
        "epigraf", "'epigraf' (hypernetwork-modulated, patch-conditioned), 'standard' (plain StyleGAN2 D on patches: "
                   "no modulation, no patch conditioning) or 'dual' (EG3D's: a StyleGAN2 ResNet D on the final image "
                   "and the upsampled raw image, 6 channels, conditioned on the 25-float camera label).")
    channel_base: int = doc(16384, "Channels at nominal resolution res are min(channel_base / res, channel_max).")
    channel_max: int = doc(512, "Upper bound on D channels.")
    num_fp16_res: int = doc(4, "The N highest-resolution blocks run in float16 on CUDA (never on CPU).")
    conv_clamp: float = doc(256.0, "Clamp conv outputs to +-this (0 disables).")
    mbstd_group: int = doc(4, "Minibatch-std group size (consecutive samples; must divide the batch).")
    mbstd_channels: int = doc(1, "Minibatch-std feature channels (0 disables the layer).")
    patch_embed_dim: int = doc(256, "Learned embedding size per patch scalar (table of round(1000 v), 1001 rows).")
    patch_fourier_freqs: int = doc(10, "Log-spaced Fourier frequencies per patch scalar (sin and cos each).")
    hyper_dim: int = doc(512, "Width of the hypernetwork H (and of its output h).")
    hyper_zero_init: bool = doc(True, "Initialise each block's affine A to zero (weights and bias): sigma = 1 "
                                      "at init. False: random weights, zero bias (the reference code).")
    mapping_layers: int = doc(2, "FC layers (after the input embedding) in H and in the projection mapping.")
    mapping_lr_mult: float = doc(0.01, "Learning-rate multiplier of H and of the projection mapping.")
    camera_cond: bool = doc(False, "Condition D on the camera yaw/pitch (FFHQ, Cats).")
    camera_encoding: Literal["fourier", "raw"] = doc("fourier", "Camera encoding: 'fourier' (paper) or 'raw' (reference code).")
    camera_fourier_freqs: int = doc(6, "Fourier frequencies pi 2^k (k < N) of the normalised camera angles.")
    camera_drop_p: float = doc(0.5, "Element-wise dropout on the camera encoding during training.")


@dataclass
class TrainConfig:
    """Patch-wise adversarial training (EpiGRAF's defaults)."""

    batch: int = doc(64, "Total batch size over all GPUs/processes.")
    kimg: float = doc(25000.0, "Training length in thousands of real images shown to D.")
    patch_res: int = doc(64, "Patch resolution r (r x r rays rendered per fake patch).")
    patch_dist: Literal["beta", "uniform", "full"] = doc("beta", "Patch scale schedule: 'beta' (EpiGRAF), 'uniform' (annealed GRAF) or 'full'.")
    patch_beta_start: float = doc(0.001, "Beta(1, beta) second parameter at the start of training.")
    patch_beta_end: float = doc(0.8, "Beta(1, beta) second parameter after patch_anneal_kimg.")
    patch_anneal_kimg: float = doc(10000.0, "kimg over which the patch schedule anneals (T).")
    patch_group: int = doc(4, "Consecutive samples sharing one patch (matches the minibatch-std group).")
    g_lr: float = doc(0.0025, "Generator Adam learning rate.")
    d_lr: float = doc(0.002, "Discriminator Adam learning rate.")
    betas: tuple[float, float] = doc((0.0, 0.99), "Adam betas.")
    eps: float = doc(1e-8, "Adam epsilon.")
    r1_gamma: float = doc(0.1, "R1 weight on real patches (0.1 faces, 0.05 Megascans).")
    r1_interval: int = doc(16, "Lazy R1: applied every this many D steps (lr and betas rescaled).")
    rgb_range_weight: float = doc(
        0.0,
        "Weight of a G penalty, mean((|rgb| - 1)_+^2), on decoded colours outside the [-1, 1] image range at "
        "random points of the tri-plane cube (0 = off, as in the reference). The colour head is linear, so "
        "without it G can paint a light background with thin fog of out-of-range colour.")
    rgb_range_points: int = doc(2048, "Random points per sample for the colour-range penalty.")
    outside_density_weight: float = doc(
        0.0,
        "Weight of a G penalty, the mean density at random points of the training cameras' rays (between near "
        "and far) that lie outside the tri-plane cube (0 = off, as in the reference). There the planes read "
        "zeros, and what density the remaining features make shows as flat-edged patches where the cube's "
        "faces cut the view. Only for data whose objects fit inside the cube.")
    outside_density_points: int = doc(1024, "Ray points per sample for the outside-density penalty (a square grid of rays).")
    recon_weight: float = doc(
        0.0,
        "Weight of an L1 reconstruction term for G (0 = off, the GAN alone, as in the reference): each fake is "
        "rendered with a real image's label and camera, and its patch is compared with that image's patch. "
        "Only for data in which a label (or, without labels, the whole dataset) is one object seen from many "
        "cameras, such as the demo set: it pulls G(z, c) to that object for every z, so z stops mattering. "
        "Needs mirror off (a mirrored view shows the mirror image of the object).")
    label_init: float = doc(
        1.0,
        "When class labels are added to an unconditional model (--resume with --generator.c_dim): the initial "
        "size of G's label weights in its mapping network, relative to a fresh network's random ones. 0 keeps "
        "every output exactly as it was for every label; 1 moves each class's w as a freshly built network "
        "would, so each class starts from another part of the learned distribution. The mapping's learning-rate "
        "multiplier (0.01) lets zero weights grow too slowly for the label to matter. D's label weights start "
        "at zero either way.")
    neural_res_start: int = doc(0, "EG3D: the neural rendering resolution training starts at; it grows linearly "
                                   "(rounded) to generator.neural_res over neural_res_kimg (EG3D's "
                                   "neural_rendering_resolution_initial/final). 0: no schedule.")
    neural_res_kimg: float = doc(1000.0, "EG3D: kimg over which the neural rendering resolution grows.")
    density_reg: float = doc(0.0, "EG3D: weight of the density regulariser (L1 between the raw densities of "
                                  "random points and of copies moved by density_reg_dist), applied every 4 G steps.")
    density_reg_dist: float = doc(0.004, "EG3D: std of the perturbation of the density regulariser's points.")
    blur_init_sigma: float = doc(10.0, "Gaussian blur sigma on D inputs at the start.")
    blur_fade_kimg: float = doc(200.0, "kimg over which the D-input blur fades to 0.")
    ema_kimg: float = doc(20.0, "G_ema half-life in kimg (batch 64 * 0.3125).")
    ema_rampup: float = doc(0.05, "EMA ramp-up: half-life at most cur_kimg * rampup (None-like when 0).")
    augment: Literal["ada", "none"] = doc("ada", "Augmentation: 'ada' (adaptive, no x-flip) or 'none'.")
    ada_target: float = doc(0.6, "ADA target for E[sign(D(real))].")
    ada_interval: int = doc(4, "Adjust the augmentation probability every this many steps.")
    ada_kimg: float = doc(500.0, "ADA speed: kimg for p to go from 0 to 1.")
    mirror: bool = doc(True, "Dataset x-flip mirroring with the camera mirrored too.")
    camera_source: Literal["prior", "dataset"] = doc("prior", "Fake cameras from the camera 'prior' or from the 'dataset' poses.")
    pose_swap_start: float = doc(1.0, "Probability of swapping the G conditioning pose at the start.")
    pose_swap_end: float = doc(0.5, "... after pose_swap_kimg.")
    pose_swap_kimg: float = doc(1000.0, "kimg over which the pose-swap probability anneals.")
    tick_kimg: float = doc(4.0, "Progress line and stats every this many kimg.")
    snapshot_ticks: int = doc(50, "Snapshot (and sample grid) every this many ticks.")
    grid_res: int = doc(0, "Resolution of the sample grid's images written with each snapshot (0 = the image "
                           "resolution; lower it to save time on a CPU).")
    metrics: tuple[str, ...] = doc(("fid2k",), "Metrics evaluated with every snapshot (empty to skip).")
    seed: int = doc(0, "Random seed (per-process streams derive from it).")
    workers: int = doc(2, "Data-loading worker processes per training process.")
    nan_patience: int = doc(8, "Consecutive non-finite steps after which training rolls back to the last snapshot.")


@dataclass
class ModelConfig:
    """Everything needed to build and render a generator."""

    name: str = doc("custom", "Preset name this config was derived from.")
    img_resolution: int = doc(256, "Resolution R of the dataset images (renders default to it).")
    generator: GeneratorConfig = field(default_factory=GeneratorConfig, metadata={"doc": "Generator."})
    render: RenderConfig = field(default_factory=RenderConfig, metadata={"doc": "Renderer."})
    camera: CameraConfig = field(default_factory=CameraConfig, metadata={"doc": "Camera prior."})
    camera_gen: CameraGenConfig = field(default_factory=CameraGenConfig,
                                         metadata={"doc": "Learned camera distribution (3DGP)."})
    depth: DepthConfig = field(default_factory=DepthConfig,
                               metadata={"doc": "3DGP depth: RGB-D discriminator and depth adaptor."})
    kd: KDConfig = field(default_factory=KDConfig, metadata={"doc": "3DGP knowledge distillation into D."})
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig,
                                               metadata={"doc": "Discriminator."})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": "Training."})


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
        discriminator=DiscriminatorConfig(camera_cond=True),
        train=TrainConfig(r1_gamma=0.1),
    )


def _megascans256() -> ModelConfig:
    return ModelConfig(
        name="megascans256",
        train=TrainConfig(r1_gamma=0.05),
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
    # cube_scale 0.3 instead of Megascans' 0.475: at radius 1, fov 30 and near/far 0.75/1.25 the
    # rendered region fits in a ball of radius ~0.25, so 0.475 would leave half of each plane unused.
    return ModelConfig(
        name="demo",
        img_resolution=64,
        generator=GeneratorConfig(z_dim=128, w_dim=128, plane_res=64, channel_base=4096,
                                  channel_max=128, decoder_hidden=64, cube_scale=0.3, density_noise_kimg=100.0),
        render=RenderConfig(num_coarse=24, num_fine=24, background="white", far_opaque=False),
        discriminator=DiscriminatorConfig(channel_base=4096, channel_max=128, hyper_dim=128, patch_embed_dim=64,
                                          num_fp16_res=0),
        # 32x32 patches of 64x64 images keep the patch-wise path exercised; schedules shortened
        # to the length of a CPU run (ADA's speed too: at 500 kimg p could not pass ~0.1 in the
        # tens of kimg a CPU run trains, while D's sign(real) stayed at ~0.8 on the 896-image
        # demo set). The colour-range penalty: on the white background, without it, some latents
        # became semi-transparent bodies painted with colours of -90 (checkpoints/demo.md). The
        # outside-density penalty: the demo objects fit inside the cube, yet the model put density
        # beyond its faces that showed as flat-edged patches in views from above and below.
        train=TrainConfig(batch=16, kimg=200.0, patch_res=32, patch_anneal_kimg=100.0, r1_gamma=0.05,
                          blur_init_sigma=2.0, blur_fade_kimg=10.0, ema_kimg=2.0, ada_kimg=100.0, tick_kimg=1.0,
                          snapshot_ticks=10, metrics=("kid1k",), rgb_range_weight=1.0,
                          outside_density_weight=1.0),
        camera=CameraConfig(fov_deg=30.0, radius=1.0, near=0.75, far=1.25, dist="spherical_uniform",
                            yaw_mean=0.0, yaw_std=math.pi, pitch_mean=math.pi / 2, pitch_std=math.pi / 2),
    )


# EG3D (Chan et al. 2022), the settings of NVlabs/eg3d's train.py per dataset (docs/eg3d.md). Its cameras:
# the frontal camera on +z (yaw pi/2 here), 2.7 from the origin, looking at a pivot; fixed ray bounds.
EG3D_FOCAL_FACES = 4.2647  # FFHQ and AFHQ intrinsics: 2985.29 / 700
EG3D_FOCAL_SHAPENET = 1.7074


def _fov(focal: float) -> float:
    return math.degrees(2 * math.atan(0.5 / focal))


def _eg3d(name: str, img_resolution: int, sr_module: str, sr_channels: tuple[int, int], neural_res: int = 64,
          **train) -> ModelConfig:
    return ModelConfig(
        name=name,
        img_resolution=img_resolution,
        generator=GeneratorConfig(family="eg3d", plane_res=256, conv_clamp=0.0, cube_scale=0.5, density_shift=-1.0,
                                  pose_cond=True, neural_res=neural_res, sr_module=sr_module,
                                  sr_channels=sr_channels),
        render=RenderConfig(num_coarse=48, num_fine=48, background="black", far_opaque=False, skip_empty=False),
        camera=CameraConfig(fov_deg=_fov(EG3D_FOCAL_FACES), radius=2.7, near=2.25, far=3.3, look_at=(0.0, 0.0, 0.2),
                            dist="gaussian", yaw_mean=math.pi / 2, yaw_std=0.3, pitch_mean=math.pi / 2,
                            pitch_std=0.155),
        discriminator=DiscriminatorConfig(variant="dual", channel_base=32768, camera_cond=True),
        train=TrainConfig(**{**dict(batch=32, patch_dist="full", patch_res=img_resolution, r1_gamma=1.0,
                                    ema_kimg=10.0, blur_fade_kimg=200.0, augment="none", camera_source="dataset",
                                    pose_swap_end=0.5, pose_swap_kimg=1000.0, density_reg=0.25), **train}),
    )


def _eg3d_ffhq512() -> ModelConfig:
    return _eg3d("eg3d_ffhq512", 512, "8x", (256, 128))


def _eg3d_afhq512() -> ModelConfig:
    # afhqcats512-128: fine-tuned from FFHQ with ADA, gamma 5, pose-swap 0.8 and a 128^2 neural render
    cfg = _eg3d("eg3d_afhq512", 512, "8x", (256, 128), neural_res=128, r1_gamma=5.0, augment="ada",
                pose_swap_end=0.8, neural_res_start=64)
    cfg.camera.look_at = (0.0, 0.0, -0.06)
    return cfg


def _eg3d_shapenet128() -> ModelConfig:
    cfg = _eg3d("eg3d_shapenet128", 128, "2x", (128, 64), r1_gamma=0.3)
    g, r, c = cfg.generator, cfg.render, cfg.camera
    g.cube_scale, g.pose_cond = 0.8, False  # box_warp 1.6; no generator pose conditioning
    r.num_coarse = r.num_fine = 64
    r.background = "white"
    c.fov_deg, c.radius, c.near, c.far, c.look_at = _fov(EG3D_FOCAL_SHAPENET), 1.7, 0.1, 2.6, (0.0, 0.0, 0.0)
    c.dist, c.yaw_std, c.pitch_std = "spherical_uniform", math.pi, math.pi / 2
    return cfg


def _eg3d_demo() -> ModelConfig:
    # EG3D on the CPU, on the demo dataset (its cameras: radius 1 about the origin, fov 30): a 32^2 neural
    # render super-resolved to 64^2, 64^2 planes of <= 128 channels, 24 + 24 samples, schedules shortened.
    cfg = _eg3d("eg3d_demo", 64, "2x", (32, 16), neural_res=32, batch=16, kimg=200.0, r1_gamma=0.05,
                blur_init_sigma=2.0, blur_fade_kimg=10.0, ema_kimg=2.0, pose_swap_kimg=50.0, tick_kimg=1.0,
                snapshot_ticks=10, metrics=("kid1k",), mirror=True)
    g, r = cfg.generator, cfg.render
    g.z_dim = g.w_dim = 128
    g.plane_res, g.channel_base, g.channel_max, g.cube_scale = 64, 4096, 128, 0.3
    r.num_coarse = r.num_fine = 24
    r.background = "white"
    cfg.camera = CameraConfig(fov_deg=30.0, radius=1.0, near=0.75, far=1.25, look_at=(0.0, 0.0, 0.0),
                              dist="spherical_uniform", yaw_mean=0.0, yaw_std=math.pi, pitch_mean=math.pi / 2,
                              pitch_std=math.pi / 2)
    d = cfg.discriminator
    d.channel_base, d.channel_max, d.num_fp16_res = 4096, 128, 0
    return cfg


# 3DGP (Skorokhodov et al., ICLR 2023; docs/3dgp.md): EpiGRAF with a learned camera distribution, the depth
# adaptor with an RGB-D discriminator and knowledge distillation into D.


def _3dgp_camera(fov_min: float, fov_max: float, lookat_radius: float) -> CameraConfig:
    # 3DGP's ball-in-sphere prior: the origin at radius 1 with yaw ~ U[-pi/2, pi/2] and pitch ~ U[pi/4, 3pi/4]
    # (pitch measured from +y, pi/2 = the equator: core/cameras.py), the look-at point uniform in a ball, the field
    # of view uniform; rays between the absolute distances 0.75 and 1.25. fov_deg (the prior's mean) is what
    # fixed-camera views (from_config) use.
    return CameraConfig(fov_deg=(fov_min + fov_max) / 2, radius=1.0, near=0.75, far=1.25, dist="uniform",
                        yaw_mean=0.0, yaw_std=math.pi / 2, pitch_mean=math.pi / 2, pitch_std=math.pi / 4,
                        fov_dist="uniform", fov_min=fov_min, fov_max=fov_max, lookat_dist="ball",
                        lookat_radius_max=lookat_radius)


def _3dgp_imagenet256() -> ModelConfig:
    # The paper's ImageNet 256^2 run (docs/3dgp.md; spec numbers from the public code): tri-planes 512^2 x 32
    # channels, decoder 32 -> 64 -> 4, 32 + 32 samples, box half-size 0.5, density noise 1 -> 0 over 5000 kimg,
    # 64^2 patches on EpiGRAF's Beta schedule, batch 64, 25000 kimg, no augmentation, EMA half-life 20 kimg,
    # Adam 0.0025 / 0.002 with betas (0, 0.99), R1 gamma 0.05, channel base 65536 and max 1024 for G and D,
    # 1000 classes; camera generator (EMD ramp 10000 kimg), depth adaptor and distillation at their defaults.
    return ModelConfig(
        name="3dgp_imagenet256",
        img_resolution=256,
        generator=GeneratorConfig(c_dim=1000, plane_res=512, plane_channels=32, channel_base=65536, channel_max=1024,
                                  decoder_hidden=64, cube_scale=0.5, density_noise_init=1.0,
                                  density_noise_kimg=5000.0),
        render=RenderConfig(num_coarse=32, num_fine=32, far_opaque=True),
        camera=_3dgp_camera(10.0, 45.0, 0.2),
        camera_gen=CameraGenConfig(enabled=True),
        depth=DepthConfig(enabled=True),
        kd=KDConfig(enabled=True),
        discriminator=DiscriminatorConfig(channel_base=65536, channel_max=1024),
        train=TrainConfig(batch=64, kimg=25000.0, patch_res=64, patch_dist="beta", g_lr=0.0025, d_lr=0.002,
                          betas=(0.0, 0.99), r1_gamma=0.05, augment="none", ema_kimg=20.0,
                          metrics=("fid2k", "nfs256")),
    )


def _3dgp_demo() -> ModelConfig:
    # 3DGP on a CPU, on scripts/make_3dgp_demo_data.sh's data (the demo objects seen from 3DGP's range of origins
    # with fields of view in [22, 32] and look-at offsets up to 0.08, degraded depth, teacher embeddings): the demo
    # preset's sizes (64^2 images, 64^2 planes of <= 128 channels, 24 + 24 samples, 32^2 patches, batch 16), a
    # prior around the data's cameras (fov U[15, 35], look-at ball 0.1), box half-size 0.35 (the look-at offset
    # and the widest view reach ~0.5 from the centre at the far bound, the objects 0.23), and 3DGP's schedules
    # shortened to a CPU run's length: the EMD ramp over 3 kimg, the adaptor's selection anneal over 10 kimg, the
    # distillation weight decaying over 50 kimg. The camera generator learns at 10x 3DGP's rate (lr_mult 1):
    # it starts out nearly constant (one camera for all latents) and at 0.1 its spread grows towards the prior's
    # over tens of kimg (measured: yaw std 0.13 after 10 kimg at 0.1, 0.8 at 1.0, the prior's 0.91). The FoV's
    # EMD weight is 100x 3DGP's 1e-4: at 1e-4 (and a 10-kimg ramp) the learned FoV ran to the prior's upper
    # bound, 34.4 of [15, 35], within half a kimg; at 1e-2 it stays inside the data's [22, 32]. The distance is
    # taken per class (emd_per_class, an extension): with 3DGP's random classes every class kept a single view
    # (at 8 kimg a yaw std of 0.03-0.05 within a class against 0.22-0.23 per class; KID500 0.150 against 0.136;
    # docs/3dgp.md).
    cfg = _demo()
    cfg.name = "3dgp_demo"
    cfg.generator.cube_scale = 0.35
    cfg.camera = _3dgp_camera(15.0, 35.0, 0.1)
    cfg.camera_gen = CameraGenConfig(enabled=True, lr_mult=1.0, ramp_kimg=3.0, emd_fov=1e-2, emd_per_class=True)
    cfg.depth = DepthConfig(enabled=True, select_anneal_kimg=10.0)
    cfg.kd = KDConfig(enabled=True, decay_kimg=50.0)
    t = cfg.train
    t.augment, t.metrics = "none", ("kid1k", "nfs256")
    return cfg


PRESETS = {"demo": _demo, "ffhq512": _ffhq512, "megascans256": _megascans256, "eg3d_ffhq512": _eg3d_ffhq512,
           "eg3d_afhq512": _eg3d_afhq512, "eg3d_shapenet128": _eg3d_shapenet128, "eg3d_demo": _eg3d_demo,
           "3dgp_imagenet256": _3dgp_imagenet256, "3dgp_demo": _3dgp_demo}


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
    out = cls(**kwargs)
    if not path:
        check_choices(out)
    return out


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
    ftype = str(next(f.type for f in dataclasses.fields(obj) if f.name == name))
    value = _parse_like(getattr(obj, name), raw.strip(), key, ftype)
    allowed = choices_of(obj, name)
    if allowed and value not in allowed:
        raise UserError(f"'{raw.strip()}' is not a choice for config key '{key}': choose one of {', '.join(allowed)}")
    setattr(obj, name, value)


def _parse_like(current: Any, raw: str, key: str, ftype: str = "") -> Any:
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
            value = float(raw)
            if not math.isfinite(value):
                raise UserError(f"config key '{key}' must be a finite number, got '{raw}'")
            return value
        if isinstance(current, tuple):
            items = [x.strip() for x in raw.strip("()[]").split(",") if x.strip()]
            return tuple(items) if "str" in ftype else tuple(float(x) for x in items)
        return raw
    except ValueError:
        raise UserError(f"cannot parse '{raw}' for config key '{key}' (expected {type(current).__name__})") from None
