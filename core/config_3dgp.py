"""Configuration of 3DGP's depth supervision ("3D generation on ImageNet", ICLR 2023): the RGB-D
discriminator and the depth adaptor (core/networks/depth_adaptor.py, docs/3dgp.md).

Fields are declared like those of core/config.py (a default and a doc string in the field's
metadata, which the command-line help and the viewer's forms read); this module imports nothing from
core so that core/config.py can hold DepthConfig (as ModelConfig.depth) without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _doc(default: Any, text: str) -> Any:
    """A dataclass field with a default and a documentation string (as core.config.doc)."""
    return field(default=default, metadata={"doc": text})


@dataclass
class DepthConfig:
    """Depth: real depth maps (`<image stem>_depth.png`) as D's 4th channel, the rendered expected depth
    through the depth adaptor as the fakes' 4th channel."""

    enabled: bool = _doc(False, "Train with depth (3DGP): the dataset must hold a depth map per image (python -m "
                                "core.dataset_tool add-depth); D takes RGB-D, R1 covers all four channels.")
    channels: int = _doc(64, "Channels of the depth adaptor's conv layers.")
    layers: int = _doc(3, "Conv layers of the depth adaptor (candidates: the normalised depth + one per layer).")
    kernel: int = _doc(5, "Kernel size of the depth adaptor's conv layers.")
    near_shift_init: float = _doc(-3.0, "Initial value of the learned scalar theta: the normalisation's near bound is "
                                        "near + sigmoid(theta) * near_shift_max * (far - near).")
    near_shift_max: float = _doc(0.25, "Largest learnable shift of the near bound, as a fraction of far - near.")
    select_start: float = _doc(0.25, "Probability s of the raw (normalised) depth at kimg 0; candidate i is chosen "
                                     "with p_i = s + i k, k making the sum 1 (0.25 with 4 candidates: uniform).")
    select_end: float = _doc(0.1, "s after select_anneal_kimg (0.1 with 4 candidates: p = 0.1, 0.2, 0.3, 0.4).")
    select_anneal_kimg: float = _doc(10000.0, "kimg over which s moves linearly from select_start to select_end.")
    blur_with_rgb: bool = _doc(True, "Blur the depth channel of D's inputs with the current RGB blur sigma "
                                     "(train.blur_init_sigma fading over blur_fade_kimg). The 3DGP code blurs depth "
                                     "with a fixed kernel scale instead, a quirk not reproduced.")


@dataclass
class KDConfig:
    """Knowledge distillation into D (3DGP): D's head from its 4x4 epilogue predicts, from a real patch, the
    teacher embedding of the whole image (precomputed by `python -m core.dataset_tool embed`)."""

    enabled: bool = _doc(False, "Distil a teacher's whole-image embeddings into D (3DGP). Needs an embeddings file "
                                "of the training dataset (python -m core.dataset_tool embed).")
    embeddings: str = _doc("", "The embeddings file (.npz); empty: DATASET_embeddings.npz beside the dataset "
                               "(the zip or folder given to --data).")
    teacher: str = _doc("efficientnet_lite0", "The teacher named in messages that say how to make the embeddings "
                                              "('efficientnet_lite0', or 'resnet50:PATH' for the paper's).")
    weight: float = _doc(1.0, "Weight of the distillation loss at kimg 0.")
    decay_kimg: float = _doc(100000.0, "kimg over which the weight decays linearly to 0 (<= 0: constant).")
