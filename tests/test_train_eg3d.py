"""Training EG3D models: the dual D, EG3DLoss's phases against independent computations, the loop
(a few steps without NaN, an exact resume) and EG3D's use of a class-labelled dataset."""

import json
import math

import pytest
import torch

from core.cameras import sample_cameras
from core.config import get_preset
from core.errors import UserError
from core.networks.dual_discriminator import DualDiscriminator, blur_image, filtered_resize
from core.networks.eg3d import build, camera_label
from core.training import distributed as distlib
from core.training.augment import AugmentPipe
from core.training.loop import train
from core.training.loss import Batch
from core.training.loss_eg3d import DENSITY_REG_INTERVAL, EG3DLoss, swap_labels
from core.training.patches import sample_patches
from core.training.setup import build_discriminator, build_loss
from tests.tiny_train import assert_same, snapshot_states


def tiny_eg3d_config():
    """eg3d_demo shrunk: 16^2 neural render, 2x SR to 32^2, 16^2 planes, narrow networks."""
    cfg = get_preset("eg3d_demo")
    cfg.img_resolution = 32
    g = cfg.generator
    g.z_dim = g.w_dim = 16
    g.plane_res, g.channel_base, g.channel_max, g.decoder_hidden = 16, 256, 16, 16
    g.neural_res, g.sr_channels = 16, (8, 8)
    cfg.render.num_coarse = cfg.render.num_fine = 6
    cfg.discriminator.channel_base, cfg.discriminator.channel_max = 256, 16
    t = cfg.train
    t.batch, t.workers, t.metrics, t.patch_res = 4, 0, (), 32
    t.tick_kimg, t.snapshot_ticks, t.r1_interval, t.kimg, t.grid_res = 0.004, 100, 2, 1.0, 16
    t.blur_fade_kimg, t.pose_swap_kimg = 1.0, 1.0
    return cfg


def _batch(cfg, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = cfg.img_resolution
    real_cams = sample_cameras(cfg.camera, b, generator=g)
    gen_cams = sample_cameras(cfg.camera, b, generator=g)
    return Batch(real=torch.rand(b, 3, r, r, generator=g) * 2 - 1, real_c=None, real_cams=real_cams,
                 gen_z=torch.randn(b, cfg.generator.z_dim, generator=g), gen_c=None, gen_cams=gen_cams,
                 patch=sample_patches(b, r, cfg.train, 0.0))


def _loss(cfg):
    G = build(cfg).train()
    D = build_discriminator(cfg).train()
    return EG3DLoss(G, D, None, cfg)


def test_dual_discriminator_from_the_config():
    cfg = tiny_eg3d_config()
    D = build_discriminator(cfg)
    assert isinstance(D, DualDiscriminator) and D.c_dim == 25 and D.img_resolution == 32
    assert D.b32.fromrgb.weight.shape[1] == 6  # the image and the raw image, stacked
    assert D.b32.conv0.weight.shape[0] == min(256 // 32, 16)  # channel_base / res, capped by channel_max
    cfg.discriminator.camera_cond = False
    assert build_discriminator(cfg).c_dim == 0
    assert isinstance(build_loss(tiny_eg3d_config(), build(cfg), D, None), EG3DLoss)
    cfg.discriminator.variant = "epigraf"
    with pytest.raises(UserError, match="dual"):
        build_loss(cfg, build(cfg), D, None)


def test_pose_swap_schedule_and_swapping():
    cfg = tiny_eg3d_config()
    t = cfg.train
    t.pose_swap_start, t.pose_swap_end, t.pose_swap_kimg = 1.0, 0.5, 40.0
    loss = EG3DLoss(None, None, None, cfg)
    assert [loss.pose_swap_prob(k) for k in (0, 10, 20, 40, 400)] == pytest.approx([1.0, 0.875, 0.75, 0.5, 0.5])
    c = torch.arange(2000.0)[:, None].expand(2000, 25)
    assert torch.equal(swap_labels(c, 0.0), c)
    assert torch.equal(swap_labels(c, 1.0)[:, 0], (torch.arange(2000.0) - 1) % 2000)  # row i takes row i - 1
    s = swap_labels(c, 0.3)[:, 0]
    swapped = s != c[:, 0]
    assert torch.equal(s[swapped], (c[:, 0][swapped] - 1) % 2000)
    assert abs(swapped.float().mean().item() - 0.3) < 0.05  # per sample, with probability p
    whole = swap_labels(c, 0.5, per_sample=False)[:, 0]
    assert torch.equal(whole, c[:, 0]) or torch.equal(whole, (c[:, 0] - 1) % 2000)  # one draw for the batch


def test_d_sees_the_blurred_image_and_the_returned_raw_image(monkeypatch):
    """Gmain: D gets (blur(image), image_raw_returned, the rendering camera's label), stacked into 6
    channels; G's mapping gets those labels or the previous sample's (swapped). Dmain: reals with
    the blurred real and its blurred neural-resolution version, and their own cameras' labels."""
    cfg = tiny_eg3d_config()
    cfg.train.blur_init_sigma = 1.5
    loss, b = _loss(cfg), _batch(cfg)
    G, D = loss.G, loss.D
    seen = {"D": [], "render": [], "map": [], "x": []}
    render, forward, mapping = G.render, D.forward, G.mapping
    monkeypatch.setattr(G, "render", lambda *a, **k: seen["render"].append(render(*a, **k)) or seen["render"][-1])
    monkeypatch.setattr(G, "mapping", lambda z, c, **k: seen["map"].append(c) or mapping(z, c, **k))
    monkeypatch.setattr(D, "forward", lambda img, raw, c: seen["D"].append((img, raw, c)) or forward(img, raw, c))
    D.b32.register_forward_hook(lambda m, args, out: seen["x"].append(args[1]))
    G.requires_grad_(True)
    loss.accumulate("Gmain", b, kimg=0.0)
    out, (img, raw, c) = seen["render"][0], seen["D"][0]
    assert out["image"].shape == (4, 3, 32, 32) and out["image_raw"].shape == (4, 3, 16, 16)
    assert not torch.equal(out["image_raw_returned"], out["image_raw"])  # 2x SR at 16 -> 32: EG3D's in-place add
    assert torch.equal(raw, out["image_raw_returned"])  # not blurred
    assert torch.allclose(img, blur_image(out["image"], 1.5)) and not torch.allclose(img, out["image"])
    assert torch.equal(c, camera_label(b.gen_cams))
    own, prev = camera_label(b.gen_cams), torch.roll(camera_label(b.gen_cams), 1, 0)
    assert all(torch.equal(m, o) or torch.equal(m, p) for m, o, p in zip(seen["map"][0], own, prev))
    x = seen["x"][0]
    assert x.shape == (4, 6, 32, 32) and torch.allclose(x[:, 3:], filtered_resize(raw, 32))
    G.requires_grad_(False)
    D.requires_grad_(True)
    seen["D"].clear()
    loss.accumulate("Dmain", b, kimg=0.0)
    img, raw, c = seen["D"][1]  # fakes first, then reals
    assert torch.allclose(img, blur_image(b.real, 1.5))
    assert torch.allclose(raw, blur_image(filtered_resize(b.real, 16), 1.5)) and raw.shape[-1] == 16
    assert torch.equal(c, camera_label(b.real_cams))


def test_density_regulariser_on_a_closed_form_field(monkeypatch):
    """raw(x) = k (x + y + z): raw(x + e) - raw(x) = k (e1 + e2 + e3) ~ N(0, 3 k^2 d^2), so the L1 is
    k d sqrt(3) sqrt(2 / pi) and its gradient in k, times density_reg and the lazy interval, that over k."""
    cfg = tiny_eg3d_config()
    cfg.train.density_reg, cfg.train.density_reg_dist = 0.25, 0.01
    loss, b = _loss(cfg), _batch(cfg)
    k = torch.tensor(3.0, requires_grad=True)
    pts_seen = []

    def decode(planes, pts, impl=None):
        pts_seen.append(pts)
        return torch.cat([torch.zeros_like(pts), (k * pts.sum(-1))[..., None]], dim=-1)
    monkeypatch.setattr(loss.G, "decode", decode)
    stats = loss.accumulate("Greg", b, kimg=0.0)
    want = 3.0 * 0.01 * math.sqrt(3) * math.sqrt(2 / math.pi)
    assert stats["density_l1"] == pytest.approx(want, rel=0.05)
    assert k.grad.item() == pytest.approx(0.25 * DENSITY_REG_INTERVAL * stats["density_l1"] / 3.0, rel=1e-4)
    pts = pts_seen[0]
    assert pts.shape == (4, 2000, 3)
    x, moved = pts[:, :1000], pts[:, 1000:]
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.99 and x.max() > 0.99  # uniform in [-1, 1]^3 world
    assert (moved - x).std().item() == pytest.approx(0.01, rel=0.05)
    monkeypatch.setattr(loss.G, "decode", lambda planes, pts, impl=None: k * torch.ones(*pts.shape[:2], 4))
    assert loss.accumulate("Greg", b, kimg=0.0)["density_l1"] == 0.0  # constant density: no penalty


def test_r1_reaches_both_images():
    """The Dreg stat equals gamma-free R1 computed here from D alone: |dD/d real|^2 (through the blur)
    + |dD/d raw target|^2 per sample, meaned; both parts are non-zero."""
    cfg = tiny_eg3d_config()
    cfg.train.blur_init_sigma = 1.0
    loss, b = _loss(cfg), _batch(cfg)
    loss.D.requires_grad_(True)
    stats = loss.accumulate("Dreg", b, kimg=0.0)
    img = b.real.clone().requires_grad_(True)
    raw = blur_image(filtered_resize(b.real, 16), 1.0).requires_grad_(True)
    logits = loss.D(blur_image(img, 1.0), raw, camera_label(b.real_cams))
    g_img, g_raw = torch.autograd.grad(logits.sum(), [img, raw])
    part_img, part_raw = g_img.square().sum([1, 2, 3]), g_raw.square().sum([1, 2, 3])
    assert (part_img > 0).all() and (part_raw > 0).all()
    assert stats["r1_penalty"] == pytest.approx((part_img + part_raw).mean().item(), rel=1e-4)
    assert all(p.grad is not None for p in loss.D.b32.parameters())


def test_ada_augments_the_pair_with_the_same_parameters():
    """A brightness shift moves the image and the raw image by the same amount per sample; an integer
    translation moves the raw image as the image (the raw part resized back to its resolution)."""
    cfg = tiny_eg3d_config()
    img = filtered_resize(torch.rand(4, 3, 8, 8) * 2 - 1, 32)  # smooth
    raw = filtered_resize(img, 16)
    loss = EG3DLoss(None, None, AugmentPipe(p=1.0), cfg)
    round_trip = filtered_resize(filtered_resize(raw, 32), 16)  # up to the image size and back
    loss.augment_pipe.p.fill_(0.0)
    assert loss.augment(img, raw)[0] is img and torch.equal(loss.augment(img, raw)[1], round_trip)
    loss.augment_pipe.p.fill_(1.0)
    loss.augment_pipe.enabled = {"brightness"}
    a_img, a_raw = loss.augment(img, raw)
    shift = (a_img - img)[:, :, :1, :1]
    assert shift.abs().min() > 1e-3 and torch.allclose(a_img - img, shift.expand_as(img), atol=1e-6)
    assert torch.allclose(a_raw - round_trip, shift.expand_as(raw), atol=1e-5)
    loss.augment_pipe.enabled = {"xint"}
    a_img, a_raw = loss.augment(img, raw)
    err = (a_raw - filtered_resize(a_img, 16)).abs().mean()
    assert err < 0.25 * (a_raw - raw).abs().mean()



def test_training_runs_and_resumes_exactly(dataset, tmp_path):
    """5 steps in one go equal 4 steps, a resume and 1 step (the 5th has the density regulariser and
    R1); every logged loss is finite and the dual D's state is in the snapshots."""
    d, cpu = distlib.Dist(), torch.device("cpu")
    straight = train(tiny_eg3d_config(), dataset, tmp_path / "a", None, cpu, d, max_steps=5)
    first = train(tiny_eg3d_config(), dataset, tmp_path / "b", None, cpu, d, max_steps=4)
    resumed = train(tiny_eg3d_config(), dataset, tmp_path / "b", first["last_snapshot"], cpu, d, max_steps=1)
    assert straight["cur_nimg"] == resumed["cur_nimg"] == 20 and straight["nan_skipped"] == 0
    a, b = snapshot_states(straight["last_snapshot"]), snapshot_states(resumed["last_snapshot"])
    assert any(k.startswith("b32.") for k in a["D"]) and "mapping.fc7.weight" in a["D"]
    assert_same(a, b)
    rows = [json.loads(x) for x in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    keys = {k for r in rows for k in r}
    assert {"loss_G", "loss_D", "r1_penalty", "density_l1"} <= keys
    assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    assert list((tmp_path / "a" / "samples").glob("fakes*.png"))


def test_class_labels_of_the_dataset_are_not_used(dataset, tmp_path, capsys):
    """EG3D models take no class labels: a labelled dataset trains them with a note, and a fresh
    start from the command line leaves generator.c_dim at 0."""
    import zipfile

    from core.train import build_parser, resolve_config
    from core.training.loop import _open_dataset
    src, dst = zipfile.ZipFile(dataset), tmp_path / "labelled.zip"
    meta = json.loads(src.read("dataset.json"))
    meta["labels"] = {name: i % 2 for i, name in enumerate(meta["camera_angles"])}
    with zipfile.ZipFile(dst, "w") as z:
        for item in src.namelist():
            z.writestr(item, json.dumps(meta) if item == "dataset.json" else src.read(item))
    cfg = tiny_eg3d_config()
    ds, _ = _open_dataset(cfg, str(dst), None, distlib.Dist())
    assert ds.label_dim == 2 and "not used" in capsys.readouterr().out
    args = build_parser().parse_args(["--data", str(dst), "--outdir", str(tmp_path / "run"), "--preset", "eg3d_demo"])
    assert resolve_config(args, None).generator.c_dim == 0
    args = build_parser().parse_args(["--data", str(dst), "--outdir", str(tmp_path / "run"), "--preset", "demo"])
    assert resolve_config(args, None).generator.c_dim == 2  # EpiGRAF's demo takes them


def test_neural_resolution_schedule():
    """EG3D's schedule: rint(lerp(start, final, min(kimg / span, 1))); fakes and the reals' raw
    targets follow it; without a start the model's neural_res throughout."""
    cfg = tiny_eg3d_config()
    loss = _loss(cfg)
    assert [loss.neural_res(k) for k in (0.0, 0.5, 10.0)] == [16, 16, 16]
    cfg.train.neural_res_start, cfg.train.neural_res_kimg = 8, 2.0
    assert [loss.neural_res(k) for k in (0.0, 0.5, 1.0, 1.5, 2.0, 50.0)] == [8, 10, 12, 14, 16, 16]
    b = _batch(cfg)
    with torch.no_grad():
        out, _ = loss.run_G(b, 1.0, update_w_avg=False)
        _, raw, _ = loss.real_pair(b, 1.0)
    assert out["image_raw"].shape[-1] == raw.shape[-1] == 12 and out["image"].shape[-1] == 32
