"""Knowledge distillation into the discriminator (3DGP, "3D generation on ImageNet", ICLR 2023).

In D's main phase, on real samples only, D's KD head predicts the teacher's embedding of the whole
real image from the random patch it sees (`D(patch, ..., return_kd=True)`); the loss is the L2
distance (not squared) to the stored embedding (`core.data.embeddings`), each sample weighted by
its patch scale over the batch's mean scale, so that patches that show more of the image count
more. Its weight decays linearly from `weight` at kimg 0 to 0 at `decay_kimg` (1.0 over 100,000
kimg in snap-research/3dgp). No gradient reaches G (only real images are used).

Wiring it in (the training loop): build D with `kd_dim=emb.dim`, and in the Dmain phase add

    logits_real, pred = D(real_patch, patch_params, c, camera, return_kd=True)
    loss_D = loss_D + kd_weight(kimg) * kd_loss(pred, emb.rows(real_items).to(pred), patch_scales)

with `real_items` the dataset indices of the real batch.
"""

from __future__ import annotations

import torch


def kd_loss(pred: torch.Tensor, target: torch.Tensor, patch_scales: torch.Tensor) -> torch.Tensor:
    """mean_i w_i * ||pred_i - target_i||_2 with w_i = s_i / mean(s): a scalar.

    pred, target [B, dim]; patch_scales [B] or [B, 2] (EpiGRAF's per-axis scales; the first, x,
    is used: patches are square). Computed in float32.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"kd_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be [B, dim]")
    s = patch_scales.to(pred.device).float()
    s = s[:, 0] if s.ndim == 2 else s
    if s.shape != (pred.shape[0],):
        raise ValueError(f"kd_loss: patch_scales must be [B] or [B, 2] with B = {pred.shape[0]}, "
                         f"got {tuple(patch_scales.shape)}")
    w = s / s.mean()
    dist = torch.linalg.vector_norm(pred.float() - target.float(), dim=1)  # [B]
    return (w * dist).mean()


def kd_weight(cur_kimg: float, weight: float = 1.0, decay_kimg: float = 100000.0) -> float:
    """The KD loss weight at `cur_kimg`: `weight` at 0, falling linearly to 0 at `decay_kimg` and 0
    after it; decay_kimg <= 0 keeps it constant."""
    if decay_kimg <= 0:
        return float(weight)
    return float(weight) * max(0.0, 1.0 - float(cur_kimg) / float(decay_kimg))
