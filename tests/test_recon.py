"""The reconstruction term (train.recon_weight): each fake takes its real's label and camera, and
G's loss gains recon_weight * mean |fake patch - that real's patch|, the patch cut at the same place."""

import pytest
import torch

from core import cameras as camlib
from core.errors import UserError
from core.render.rays import Patch
from core.training import distributed as distlib
from core.training.loop import _to_batch, train
from core.training.loss import Batch, EpiGRAFLoss
from core.training.setup import build_discriminator
from tests.conftest import tiny_config


class _Labelled:
    label_dim = 3


def _data(b: int, res: int, cfg) -> dict:
    cams = camlib.sample_cameras(cfg.camera, b)
    return {"image": torch.randint(0, 256, (b, 3, res, res), dtype=torch.uint8), "cam2world": cams.cam2world,
            "intrinsics": cams.intrinsics, "label": torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2, 2, 0])[:b]]}


def test_fakes_take_their_own_reals_labels_and_cameras():
    cfg = tiny_config()
    data = _data(8, cfg.img_resolution, cfg)
    cfg.train.recon_weight = 1.0
    b = _to_batch(data, cfg, _Labelled(), "cpu", 0.0)
    assert torch.equal(b.gen_c, b.real_c) and torch.equal(b.gen_c, data["label"])
    assert torch.equal(b.gen_cams.cam2world, b.real_cams.cam2world)
    cfg.train.recon_weight = 0.0  # the GAN alone: labels shuffled, cameras from the prior
    b = _to_batch(data, cfg, _Labelled(), "cpu", 0.0)
    assert not torch.equal(b.gen_c, data["label"]) and sorted(b.gen_c.argmax(1).tolist()) == [0, 0, 0, 1, 1, 2, 2, 2]
    assert not torch.allclose(b.gen_cams.cam2world, b.real_cams.cam2world)


def _g_grad(cfg, D, batch, fake):
    """d(G's loss)/d(fake patch), with run_G standing in for G: it returns `fake` as the rendered patch."""
    loss = EpiGRAFLoss(None, D, None, cfg)
    x = fake.clone().requires_grad_(True)
    loss.run_G = lambda b, kimg, update_w_avg: (x, None)
    stats = loss.accumulate("Gmain", batch, kimg=1e6)  # past the blur fade: D sees the patch itself
    return x.grad, stats


def test_recon_term_compares_each_fake_with_the_patch_of_its_own_real():
    cfg = tiny_config()
    t = cfg.train
    t.rgb_range_weight = t.outside_density_weight = 0.0
    res, r = cfg.img_resolution, 8
    t.patch_res = r
    D = build_discriminator(cfg).train().requires_grad_(False)
    b = 4
    real = torch.rand(b, 3, res, res) * 2 - 1
    cams = camlib.sample_cameras(cfg.camera, b)
    # scale r/R with offsets on the pixel grid: the patch is an exact crop, rows oy*R.., columns ox*R..
    cols, rows = [3, 0, 8, 5], [1, 8, 2, 0]
    patch = Patch(torch.full((b,), r / res), torch.tensor([[c / res, w / res] for c, w in zip(cols, rows)]))
    crops = torch.stack([real[i, :, rows[i]:rows[i] + r, cols[i]:cols[i] + r] for i in range(b)])
    delta = torch.tensor([0.1, -0.3, 0.05, 0.2])[:, None, None, None] * torch.ones(b, 3, r, r)
    delta[1, :, :2] *= -1  # mixed signs within one patch
    batch = Batch(real, None, cams, torch.randn(b, cfg.generator.z_dim), None, cams, patch)

    t.recon_weight = 0.0
    gan_grad, stats = _g_grad(cfg, D, batch, crops + delta)
    assert "recon_l1" not in stats
    t.recon_weight = 2.5
    grad, stats = _g_grad(cfg, D, batch, crops + delta)
    assert stats["recon_l1"] == pytest.approx(delta.abs().mean().item(), rel=1e-5)
    # the term adds recon_weight * sign(delta) / (number of values) to the gradient of each value
    torch.testing.assert_close(grad - gan_grad, 2.5 * delta.sign() / delta.numel(), atol=1e-7, rtol=1e-4)
    # a fake paired with another real's patch is far off: the crops differ
    _, shuffled = _g_grad(cfg, D, batch, crops.roll(1, 0) + delta)
    assert shuffled["recon_l1"] > 0.3


def test_recon_needs_mirror_off(dataset, tmp_path):
    cfg = tiny_config()
    cfg.train.recon_weight, cfg.train.mirror = 1.0, True
    with pytest.raises(UserError, match="mirror false"):
        train(cfg, dataset, tmp_path / "run", None, torch.device("cpu"), distlib.Dist(), max_steps=1)
    assert not (tmp_path / "run").exists()
