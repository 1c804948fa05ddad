"""The patch schedule and real-patch extraction."""

import pytest
import torch

from core.config import TrainConfig
from core.render.rays import Patch
from core.training.patches import beta_of, extract_patches, sample_patches


def test_exact_crop_when_scale_is_r_over_R():
    img = torch.randn(2, 3, 16, 16)
    patch = Patch(torch.full((2,), 4 / 16), torch.tensor([[3 / 16, 0.0], [12 / 16, 9 / 16]]))
    out = extract_patches(img, patch, 4)
    torch.testing.assert_close(out[0], img[0, :, 0:4, 3:7])
    torch.testing.assert_close(out[1], img[1, :, 9:13, 12:16])


def test_full_scale_patch_of_a_linear_ramp_samples_the_pixel_centres():
    # a horizontal ramp whose value equals the NDC x of each pixel centre; downsampling by 2
    # averages neighbouring centres, so the result is again the NDC x of the coarse pixel centres
    R, r = 8, 4
    x = (torch.arange(R) * 2 + 1) / R - 1
    img = x.expand(1, 1, R, R).clone()
    out = extract_patches(img, Patch(torch.ones(1), torch.zeros(1, 2)), r)
    expected = (torch.arange(r) * 2 + 1) / r - 1
    torch.testing.assert_close(out[0, 0, 0], expected)


def test_beta_schedule_moves_from_whole_images_to_small_patches():
    cfg = TrainConfig(patch_res=64, patch_anneal_kimg=100.0, patch_group=1)
    assert beta_of(0, cfg) == pytest.approx(0.001) and beta_of(100, cfg) == pytest.approx(0.8)
    early = sample_patches(20000, 512, cfg, kimg=0)
    late = sample_patches(20000, 512, cfg, kimg=1000)
    assert early.scale.mean() > 0.99
    # Beta(1, 0.8) has mean 1 / 1.8; s = x * (1 - 1/8) + 1/8
    assert late.scale.mean().item() == pytest.approx((1 / 1.8) * (7 / 8) + 1 / 8, abs=0.01)
    for p in (early, late):
        assert (p.scale >= 64 / 512 - 1e-6).all() and (p.scale <= 1 + 1e-6).all()
        assert (p.offset >= 0).all() and (p.offset <= (1 - p.scale)[:, None] + 1e-6).all()


def test_groups_share_a_patch_and_full_and_uniform_modes():
    cfg = TrainConfig(patch_res=32, patch_group=4, patch_dist="uniform", patch_anneal_kimg=10.0)
    p = sample_patches(10, 128, cfg, kimg=5)
    assert torch.equal(p.scale[0:4], p.scale[0].expand(4)) and torch.equal(p.offset[4:8], p.offset[4].expand(4, 2))
    assert (p.scale >= 1 - 0.75 * 0.5 - 1e-6).all()  # s_min halfway from 1 to 1/4
    cfg.patch_dist = "full"
    assert torch.equal(sample_patches(8, 128, cfg, 5).scale, torch.ones(8))
