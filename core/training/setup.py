"""Building the training-only parts from the config: the discriminator, the ADA pipeline and the loss."""

from __future__ import annotations

import torch

from ..config import ModelConfig
from ..errors import UserError
from ..networks.discriminator import PatchDiscriminator
from ..networks.dual_discriminator import DualDiscriminator
from ..networks.eg3d import LABEL_DIM
from .augment import AdaController, AugmentPipe
from .loss import EpiGRAFLoss
from .loss_3dgp import ThreeDGPLoss, check_3dgp, uses_3dgp
from .loss_eg3d import EG3DLoss


def build_discriminator(cfg: ModelConfig, kd_dim: int = 0) -> PatchDiscriminator | DualDiscriminator:
    """D for images of cfg.img_resolution judged on cfg.train.patch_res patches; for variant 'dual',
    EG3D's D on the whole image and the raw neural render, conditioned on the 25-float camera label
    when discriminator.camera_cond. 3DGP: RGB-D input (4 channels) when depth.enabled, and the
    knowledge-distillation head when kd_dim > 0 (the teacher embeddings' dimension, kd.enabled)."""
    d = cfg.discriminator
    if d.variant == "dual":
        return DualDiscriminator(c_dim=LABEL_DIM if d.camera_cond else 0, img_resolution=cfg.img_resolution,
                                 img_channels=3, channel_base=d.channel_base, channel_max=d.channel_max,
                                 num_fp16_res=d.num_fp16_res, conv_clamp=d.conv_clamp, mbstd_group=d.mbstd_group,
                                 mbstd_channels=d.mbstd_channels)
    return PatchDiscriminator(cfg.discriminator, cfg.img_resolution, cfg.generator.c_dim, cfg.train.patch_res,
                              kd_dim=kd_dim, img_channels=4 if cfg.depth.enabled else 3)


def build_augment(cfg: ModelConfig, device: torch.device) -> tuple[AugmentPipe | None, AdaController | None]:
    """ADA (no x-flip) starting at p = 0, or nothing when cfg.train.augment == 'none'. ADA with depth
    is refused (its colour transforms would act on the depth channel; 3DGP trains without augmentation)."""
    t = cfg.train
    if t.augment == "none":
        return None, None
    check_3dgp(cfg)
    if t.augment != "ada":
        raise ValueError(f"unknown augmentation '{t.augment}' (ada, none)")
    pipe = AugmentPipe().to(device)
    return pipe, AdaController(pipe, target=t.ada_target, interval=t.ada_interval, speed_kimg=t.ada_kimg)


def build_loss(cfg: ModelConfig, G, D, augment_pipe, embeddings=None,
               camera_prior=None) -> EpiGRAFLoss | EG3DLoss | ThreeDGPLoss:
    """The loss of the generator's family: EpiGRAF's (patch D) or EG3D's (dual D); 3DGP's
    (core/training/loss_3dgp.py) when the camera generator, depth or distillation is enabled, with the
    teacher `embeddings` of the dataset (kd.enabled) and, for train.camera_source 'dataset', the
    dataset's `camera_prior` (loss_3dgp.DatasetCameraPrior)."""
    eg3d = cfg.generator.family == "eg3d"
    if eg3d != (cfg.discriminator.variant == "dual"):
        raise UserError(f"generator.family '{cfg.generator.family}' cannot train with discriminator.variant "
                        f"'{cfg.discriminator.variant}': EG3D models train with 'dual', EpiGRAF models with "
                        f"'epigraf' or 'standard'")
    if uses_3dgp(cfg):
        return ThreeDGPLoss(G, D, augment_pipe, cfg, embeddings=embeddings, camera_prior=camera_prior)
    return (EG3DLoss if eg3d else EpiGRAFLoss)(G, D, augment_pipe, cfg)
