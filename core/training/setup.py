"""Building the training-only networks from the config: the discriminator and the ADA pipeline."""

from __future__ import annotations

import torch

from ..config import ModelConfig
from ..networks.discriminator import PatchDiscriminator
from .augment import AdaController, AugmentPipe


def build_discriminator(cfg: ModelConfig) -> PatchDiscriminator:
    """D for images of cfg.img_resolution judged on cfg.train.patch_res patches."""
    return PatchDiscriminator(cfg.discriminator, cfg.img_resolution, cfg.generator.c_dim, cfg.train.patch_res)


def build_augment(cfg: ModelConfig, device: torch.device) -> tuple[AugmentPipe | None, AdaController | None]:
    """ADA (no x-flip) starting at p = 0, or nothing when cfg.train.augment == 'none'."""
    t = cfg.train
    if t.augment == "none":
        return None, None
    if t.augment != "ada":
        raise ValueError(f"unknown augmentation '{t.augment}' (ada, none)")
    pipe = AugmentPipe().to(device)
    return pipe, AdaController(pipe, target=t.ada_target, interval=t.ada_interval, speed_kimg=t.ada_kimg)
