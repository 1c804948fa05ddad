"""Training 3DGP models: the RGB-D discriminator with the distillation head, ThreeDGPLoss's phases (the
learned cameras, the depth channel, R1 over RGB-D, distillation on reals only), the loop (a few steps,
an exact resume, stats, a snapshot that loads), the refusals, the presets and their parameter counts,
and 3DGP-like rendered data (per-view field of view and look-at in dataset.json)."""

import json
import math
import zipfile

import numpy as np
import pytest
import torch

from core import cameras as camlib
from core.checkpoint import load_generator
from core.config import CameraGenConfig, _3dgp_camera, get_preset
from core.config_3dgp import DepthConfig, KDConfig
from core.data.dataset import ImageDataset
from core.data.depth_files import add_depth
from core.data.embeddings import FORMAT, VERSION, dataset_fingerprint, image_sizes, load_embeddings
from core.errors import UserError
from core.networks.generator import TriPlaneGenerator
from core.training import distributed as distlib
from core.training.kd import kd_loss, kd_weight
from core.training.loop import _build, _open_dataset, _optimise, _teacher_embeddings, _to_batch, train
from core.training.loss_3dgp import ThreeDGPLoss, camera_histogram
from core.training.patches import patch_params
from core.training.setup import build_augment, build_discriminator, build_loss
from tests.tiny_train import assert_same, snapshot_states, tiny_train_config

KD_DIM = 8


def write_embeddings(data: str, dest, dim: int = KD_DIM, seed: int = 0) -> np.ndarray:
    """An embeddings file for `data` in the format of `core.dataset_tool embed` (random vectors: what
    training reads is the file, not the teacher)."""
    ds = ImageDataset(data)
    vectors = np.random.default_rng(seed).standard_normal((ds.num_images, dim)).astype(np.float32)
    meta = {"format": FORMAT, "version": VERSION, "dim": dim, "count": ds.num_images,
            "index": {n: i for i, n in enumerate(ds.images)}, "teacher": "efficientnet_lite0",
            "dataset": {"fingerprint": dataset_fingerprint(ds.images, image_sizes(ds))}}
    np.savez(dest, embeddings=vectors, meta=np.array(json.dumps(meta)))
    return vectors


@pytest.fixture(scope="module")
def data3dgp(tmp_path_factory, dataset):
    """The tiny synthetic set with a depth map per image (smooth random ramps, added with add-depth) and
    teacher embeddings beside it under the default name (rgbd_embeddings.npz)."""
    root = tmp_path_factory.mktemp("data3dgp")
    depth_dir = root / "depth"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(dataset) as z:
        names = [n for n in z.namelist() if n.endswith(".png")]
    y, x = np.mgrid[0:32, 0:32] / 31.0
    for n in names:
        p = depth_dir / (n[:-4] + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        a, b = rng.random(2)
        np.save(p, (a * x + b * y + 0.1 * rng.random((32, 32))).astype(np.float32))
    out = root / "rgbd.zip"
    add_depth(dataset, depth_dir, out)
    write_embeddings(str(out), root / "rgbd_embeddings.npz")
    return str(out)


def tiny_3dgp_config():
    """tiny_train_config with every 3DGP part on, small: a camera generator of width 16, an adaptor of 8
    channels, the schedules over a few steps."""
    cfg = tiny_train_config()
    cfg.camera = _3dgp_camera(15.0, 35.0, 0.1)
    cfg.camera_gen = CameraGenConfig(enabled=True, hidden=16, embed_dim=8, lr_mult=1.0, ramp_kimg=0.02,
                                     emd_samples=16, mean_forcing_samples=16)
    cfg.depth = DepthConfig(enabled=True, channels=8, select_anneal_kimg=0.02)
    cfg.kd = KDConfig(enabled=True, decay_kimg=1.0)
    cfg.train.augment = "none"
    return cfg


def _parts(cfg, data):
    """(nets, opts, loss, dataset, a batch of 4 real items) as the loop builds them."""
    d = distlib.Dist()
    ds, _ = _open_dataset(cfg, data, None, d)
    emb = _teacher_embeddings(cfg, data, ds)
    nets, opts, pipe, _ = _build(cfg, torch.device("cpu"), d, kd_dim=emb.dim)
    loss = build_loss(cfg, nets["G"], nets["D"], pipe, embeddings=emb)
    assert isinstance(loss, ThreeDGPLoss)
    items = [ds[i] for i in (0, 5, 13, 22)]  # 13, 22 >= 12: mirrored copies
    data_b = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    return nets, opts, loss, ds, _to_batch(data_b, cfg, ds, "cpu", 0.0)


def count(m):
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------
# The discriminator


def test_discriminator_reads_rgbd_and_has_the_kd_head():
    cfg = tiny_3dgp_config()
    D = build_discriminator(cfg, kd_dim=KD_DIM)
    assert D.img_channels == 4 and D.blocks[0].fromrgb.weight.shape[1] == 4
    assert D.kd_head is not None and D.kd_head.dim == KD_DIM
    cfg.depth.enabled = False
    D3 = build_discriminator(cfg)
    assert D3.img_channels == 3 and D3.kd_head is None
    # only fromRGB grows: one more input channel of its 1x1 kernel; the head adds its two FC layers
    assert count(D) - count(D3) == D.blocks[0].fromrgb.weight.shape[0] + count(D.kd_head)
    x = torch.rand(4, 4, 16, 16) * 2 - 1
    pp = torch.tensor([[0.5, 0.1, 0.2]]).repeat(4, 1)
    logits, pred = D(x, pp, return_kd=True)
    assert logits.shape == (4, 1) and pred.shape == (4, KD_DIM)
    with pytest.raises(ValueError, match=r"\[B, 4, 16, 16\]"):
        D(x[:, :3], pp)


# ------------------------------------------------------------------------------------------------
# The loss's phases


def test_fakes_are_rendered_from_the_camera_generator_with_the_adapted_depth(data3dgp, monkeypatch):
    """Gmain renders from G.camera_params(z, c, prior) and appends the adaptor's output for the rendered
    patch's expected depth (the background at far); D sees 4 channels."""
    cfg = tiny_3dgp_config()
    cfg.train.blur_init_sigma = 0.0  # D sees the patches as rendered
    nets, _, loss, _, b = _parts(cfg, data3dgp)
    G, D = nets["G"], nets["D"]
    seen = {}
    render, adaptor, forward = G.render, G.depth_adaptor.forward, D.forward
    monkeypatch.setattr(G, "render", lambda planes, cams, **k: seen.setdefault("render", (cams, render(planes, cams, **k)))[1])
    monkeypatch.setattr(G.depth_adaptor, "forward",
                        lambda d, near, far, kimg=None, **k: seen.setdefault("adaptor", (d, near, far, kimg,
                                                                                        adaptor(d, near, far, kimg, **k)))[-1])
    monkeypatch.setattr(D, "forward", lambda img, *a, **k: seen.setdefault("D", img) is None or forward(img, *a, **k))
    G.requires_grad_(True)
    stats = loss.accumulate("Gmain", b, kimg=0.01)
    cams, out = seen["render"]
    want = camlib.params_to_cameras(G.camera_params(b.gen_z, b.gen_c, prior=b.gen_prior), cfg.camera)
    assert torch.allclose(cams.cam2world, want.cam2world) and torch.allclose(cams.intrinsics, want.intrinsics)
    assert cams.cam2world.requires_grad  # G's GAN loss reaches the camera generator
    depth, near, far, kimg, _ = seen["adaptor"]
    assert torch.allclose(depth, out["depth_raw"] + (1 - out["opacity"]) * far.reshape(-1, 1, 1, 1))
    assert torch.equal(near, cams.near) and kimg == 0.01
    assert seen["D"].shape == (4, 4, 16, 16)
    assert torch.allclose(seen["D"][:, 3:].detach(), seen["adaptor"][-1].detach())
    assert all(p.grad is not None for p in G.camera_gen.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.depth_adaptor.layers.parameters())
    for k in ("camera/emd_mult", "camera/emd_yaw", "camera/yaw_mean", "camera/fov_deg_std", "camera/lookat_radius_mean",
              "depth/near_shift", "depth/select_s"):
        assert k in stats and math.isfinite(stats[k]), k
    assert stats["camera/emd_mult"] == pytest.approx(0.5)  # 0.01 of the ramp's 0.02 kimg
    assert stats["depth/near_shift"] == pytest.approx(torch.sigmoid(torch.tensor(-3.0)).item())
    assert stats["depth/select_s"] == pytest.approx(0.25 + (0.1 - 0.25) * 0.5)


def test_r1_covers_the_depth_channel(data3dgp):
    """Dreg's R1 is the squared gradient over all four channels of the real RGB-D patch; the depth
    channel's part is not zero."""
    cfg = tiny_3dgp_config()
    cfg.train.blur_init_sigma = 0.0
    nets, _, loss, _, b = _parts(cfg, data3dgp)
    nets["D"].requires_grad_(True)
    stats = loss.accumulate("Dreg", b, kimg=0.0)
    real = loss.real_patches(b).detach().requires_grad_(True)
    assert real.shape == (4, 4, 16, 16)
    (g,) = torch.autograd.grad(loss.run_D(real, b, b.real_c, b.real_cams, 0.0).sum(), [real])
    depth_part = g[:, 3].square().sum(dim=[1, 2])
    assert (depth_part > 0).all()
    assert stats["r1_penalty"] == pytest.approx(g.square().sum(dim=[1, 2, 3]).mean().item(), rel=1e-4)


def test_distillation_uses_the_reals_rows_and_gives_g_no_gradient(data3dgp):
    """Dmain adds kd_weight(kimg) * kd_loss(D's prediction on the real patches, the teacher rows of the
    batch's images (a mirrored item takes its image's row), the patch scales); G gets no gradient, the
    head does."""
    cfg = tiny_3dgp_config()
    nets, _, loss, ds, b = _parts(cfg, data3dgp)
    G, D = nets["G"], nets["D"]
    assert b.real_idx.tolist() == [0, 5, 13, 22]
    emb = load_embeddings(data3dgp.replace(".zip", "_embeddings.npz"), ds)
    assert torch.equal(loss.embeddings.rows(b.real_idx), emb.vectors[[0, 5, 1, 10]])
    G.requires_grad_(True)
    D.requires_grad_(True)
    stats = loss.accumulate("Dmain", b, kimg=0.25)
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.kd_head.parameters())
    with torch.no_grad():
        _, pred = loss.run_D(loss.real_patches(b), b, b.real_c, b.real_cams, 0.25, return_kd=True)
    want = kd_loss(pred, emb.vectors[[0, 5, 1, 10]], b.patch.scales_xy())
    assert stats["kd/loss"] == pytest.approx(want.item(), rel=1e-5)
    assert stats["kd/weight"] == pytest.approx(kd_weight(0.25, 1.0, 1.0)) == 0.75
    assert patch_params(b.patch).shape == (4, 3)


def test_a_g_step_moves_the_camera_generator_and_every_parameter_gets_a_gradient(data3dgp):
    """One step of the loop: the camera generator and the adaptor are trained by G's optimiser (their
    weights change), and in each network's phases every parameter of it has a gradient (the hand-made
    gradient averaging of several processes needs the same set everywhere); G_ema holds them too."""
    cfg = tiny_3dgp_config()
    cfg.train.r1_interval = 1  # Dreg in this step
    nets, opts, loss, _, b = _parts(cfg, data3dgp)
    G, D = nets["G"], nets["D"]
    assert {n for n, _ in nets["G_ema"].named_parameters()} == {n for n, _ in G.named_parameters()}
    assert any(n.startswith("camera_gen.") for n, _ in G.named_parameters())
    assert any(n.startswith("depth_adaptor.") for n, _ in G.named_parameters())
    in_opt = {id(p) for group in opts["G"].param_groups for p in group["params"]}
    assert all(id(p) in in_opt for p in G.parameters())
    before = {n: p.detach().clone() for n, p in G.named_parameters() if n.startswith(("camera_gen.", "depth_adaptor."))}
    ok, stats = _optimise(nets, opts, loss, b, 0.01, cfg, 0, distlib.Dist(), torch.device("cpu"))
    assert ok
    after = dict(G.named_parameters())
    changed = [n for n, v in before.items() if not torch.equal(v, after[n])]
    assert any(n.startswith("camera_gen.origin.") for n in changed) and any(n.startswith("camera_gen.lookat.") for n in changed)
    assert "depth_adaptor.theta" in changed and any(n.startswith("depth_adaptor.layers.") for n in changed)
    assert all(p.grad is not None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())
    assert {"camera/emd_mult", "camera/emd_yaw", "camera/emd_fov_deg", "kd/loss", "r1_penalty"} <= set(stats)


# ------------------------------------------------------------------------------------------------
# The loop


def test_training_runs_resumes_exactly_and_its_snapshot_loads(data3dgp, tmp_path):
    """5 steps in one go equal 4 steps, a resume and 1 step; the stats carry the camera, depth and
    distillation scalars and a 16-bin histogram of the learned cameras; the snapshot opens with
    load_generator, camera generator and adaptor included."""
    d, cpu = distlib.Dist(), torch.device("cpu")
    straight = train(tiny_3dgp_config(), data3dgp, tmp_path / "a", None, cpu, d, max_steps=5)
    first = train(tiny_3dgp_config(), data3dgp, tmp_path / "b", None, cpu, d, max_steps=4)
    resumed = train(tiny_3dgp_config(), data3dgp, tmp_path / "b", first["last_snapshot"], cpu, d, max_steps=1)
    assert straight["cur_nimg"] == resumed["cur_nimg"] == 20 and straight["nan_skipped"] == 0
    a, b = snapshot_states(straight["last_snapshot"]), snapshot_states(resumed["last_snapshot"])
    assert any(k.startswith("kd_head.") for k in a["D"]) and a["D"]["blocks.0.fromrgb.weight"].shape[1] == 4
    assert any(k.startswith("camera_gen.") for k in a["G_ema"]) and "depth_adaptor.theta" in a["G_ema"]
    assert_same(a, b)
    rows = [json.loads(x) for x in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    assert {"camera/emd_mult", "camera/yaw_mean", "camera/yaw_std", "camera/pitch_mean", "camera/pitch_std",
            "camera/fov_deg_mean", "camera/fov_deg_std", "camera/lookat_radius_mean", "camera/lookat_radius_std",
            "kd/loss", "kd/weight", "depth/near_shift", "depth/select_s", "loss_G", "loss_D"} <= keys
    hist = rows[-1]["camera_hist"]
    assert hist["bins"] == 16 and set(hist) >= {"yaw", "pitch", "fov_deg"}
    assert sum(hist["fov_deg"]["counts"]) == hist["n"] and hist["fov_deg"]["range"] == [15.0, 35.0]
    assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    G, info = load_generator(str(straight["last_snapshot"]))
    assert G.camera_gen is not None and G.depth_adaptor is not None
    assert info["config"]["camera_gen"]["enabled"] and info["config"]["kd"]["enabled"]
    mean = G.mean_camera_params(n=64)
    assert 15.0 <= mean.fov_deg.item() <= 35.0


def test_camera_histogram_leaves_the_global_rng_alone():
    cfg = tiny_3dgp_config()
    G = TriPlaneGenerator(cfg)
    state = torch.get_rng_state()
    h = camera_histogram(G, cfg, n=100, bins=16, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert h == camera_histogram(G, cfg, n=100, bins=16, seed=3)
    assert [sum(h[k]["counts"]) for k in ("yaw", "pitch", "fov_deg")] == [100, 100, 100]
    cfg.camera_gen.enabled = False
    assert camera_histogram(TriPlaneGenerator(cfg), cfg) == {}


# ------------------------------------------------------------------------------------------------
# Refusals


def test_refusals_are_one_line_with_the_command_to_run(data3dgp, dataset, tmp_path):
    d = distlib.Dist()
    cfg = tiny_3dgp_config()
    with pytest.raises(UserError) as e:  # depth asked for, the dataset has none
        _open_dataset(cfg, dataset, None, d)
    msg = str(e.value)
    assert "\n" not in msg and "depth.enabled" in msg and "python -m core.dataset_tool add-depth" in msg

    ds, _ = _open_dataset(cfg, data3dgp, None, d)
    cfg.kd.embeddings = str(tmp_path / "missing.npz")
    with pytest.raises(UserError) as e:
        _teacher_embeddings(cfg, data3dgp, ds)
    msg = str(e.value)
    assert "\n" not in msg and (f"python -m core.dataset_tool embed --source {data3dgp} --teacher efficientnet_lite0 "
                                f"--dest {tmp_path / 'missing.npz'}") in msg

    other = tmp_path / "other.npz"  # made for another dataset
    write_embeddings(dataset, other)
    with zipfile.ZipFile(dataset) as z:
        first = sorted(n for n in z.namelist() if n.endswith(".png"))[0]
    meta = json.loads(str(np.load(other)["meta"]))
    meta["index"] = {("x" + k if k == first else k): v for k, v in meta["index"].items()}
    np.savez(other, embeddings=np.load(other)["embeddings"], meta=np.array(json.dumps(meta)))
    cfg.kd.embeddings = str(other)
    with pytest.raises(UserError) as e:
        _teacher_embeddings(cfg, data3dgp, ds)
    msg = str(e.value)
    assert "\n" not in msg and "python -m core.dataset_tool embed --source" in msg

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"nope")
    cfg.kd.embeddings = str(junk)
    with pytest.raises(UserError, match="not a teacher-embeddings file.*python -m core.dataset_tool embed --source"):
        _teacher_embeddings(cfg, data3dgp, ds)

    cfg = tiny_3dgp_config()
    cfg.train.augment = "ada"
    for call in (lambda: build_augment(cfg, torch.device("cpu")), lambda: _open_dataset(cfg, data3dgp, None, d)):
        with pytest.raises(UserError, match="train.augment 'ada' cannot be used with depth.enabled") as e:
            call()
        assert "\n" not in str(e.value) and "--train.augment none" in str(e.value)


def test_training_without_embeddings_file_stops_before_building(data3dgp, tmp_path):
    cfg = tiny_3dgp_config()
    cfg.kd.embeddings = str(tmp_path / "nope.npz")
    with pytest.raises(UserError, match="kd.enabled needs the teacher embeddings"):
        train(cfg, data3dgp, tmp_path / "run", None, torch.device("cpu"), distlib.Dist(), max_steps=1)


# ------------------------------------------------------------------------------------------------
# Presets


def test_3dgp_presets():
    p = get_preset("3dgp_imagenet256")
    g, c, t, d = p.generator, p.camera, p.train, p.discriminator
    assert (p.img_resolution, g.c_dim, g.plane_res, g.plane_channels, g.decoder_hidden, g.cube_scale) == \
        (256, 1000, 512, 32, 64, 0.5)
    assert (g.channel_base, g.channel_max, d.channel_base, d.channel_max) == (65536, 1024, 65536, 1024)
    assert (p.render.num_coarse, p.render.num_fine, g.density_noise_init, g.density_noise_kimg) == (32, 32, 1.0, 5000.0)
    assert (t.batch, t.kimg, t.augment, t.ema_kimg, t.g_lr, t.d_lr, t.betas, t.r1_gamma, t.patch_res) == \
        (64, 25000.0, "none", 20.0, 0.0025, 0.002, (0.0, 0.99), 0.05, 64)
    assert (c.fov_dist, c.fov_min, c.fov_max, c.lookat_dist, c.lookat_radius_max, c.near, c.far, c.radius) == \
        ("uniform", 10.0, 45.0, "ball", 0.2, 0.75, 1.25, 1.0)
    bounds = camlib.prior_bounds(c)
    assert bounds["yaw"] == pytest.approx((-math.pi / 2, math.pi / 2))
    assert bounds["pitch"] == pytest.approx((math.pi / 4, 3 * math.pi / 4))
    assert p.camera_gen.enabled and p.depth.enabled and p.kd.enabled and p.camera_gen.ramp_kimg == 10000.0
    demo = get_preset("3dgp_demo")
    assert demo.camera_gen.enabled and demo.depth.enabled and demo.kd.enabled and demo.train.augment == "none"
    assert demo.img_resolution == 64 and demo.camera_gen.ramp_kimg <= 20 and demo.depth.select_anneal_kimg <= 20
    assert (demo.camera.fov_min, demo.camera.fov_max, demo.camera.lookat_radius_max) == (15.0, 35.0, 0.1)


def test_3dgp_imagenet256_parameter_counts():
    """Counted on the meta device (docs/3dgp.md records them): G with its camera generator and depth
    adaptor; D with RGB-D input, without and with the KD head (EfficientNet-Lite0's 1280-d, ResNet-50's
    2048-d features)."""
    cfg = get_preset("3dgp_imagenet256")
    with torch.device("meta"):
        G = TriPlaneGenerator(cfg)
        D = build_discriminator(cfg)
        D1280, D2048 = build_discriminator(cfg, kd_dim=1280), build_discriminator(cfg, kd_dim=2048)
    assert (count(G), count(G.mapping_network), count(G.synthesis), count(G.decoder)) == \
        (105_705_533, 1_299_968, 104_023_055, 2_372)
    assert (count(G.camera_gen), count(G.depth_adaptor)) == (173_480, 206_658)
    assert (count(D), count(D1280), count(D2048)) == (124_154_880, 142_245_120, 143_032_320)
    cfg.depth.enabled = False
    with torch.device("meta"):
        assert count(build_discriminator(cfg)) == 124_154_880 - 256  # fromRGB's 4th input channel


# ------------------------------------------------------------------------------------------------
# Data with 3DGP cameras


def test_dataset_json_camera_params_give_each_image_its_fov_and_look_at(tmp_path):
    """An EpiGRAF-form dataset.json with camera_params: per image a field of view and a look-at point in
    the ball (what render --fov-range/--lookat-radius writes); omitted fields are the config's."""
    from PIL import Image

    folder = tmp_path / "d"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 50 * i, np.uint8)).save(folder / f"v{i}.png")
    angles = {f"v{i}.png": [0.3 * (i + 1), 1.2, 0.0] for i in range(3)}
    params = {"v0.png": {"fov_deg": 20.0, "lookat_yaw": 0.5, "lookat_pitch": 1.0, "lookat_radius": 0.08},
              "v1.png": {"fov_deg": 33.0}}
    (folder / "dataset.json").write_text(json.dumps({"camera_angles": angles, "camera_params": params}))
    cfg = get_preset("3dgp_demo").camera
    ds = ImageDataset(str(folder), camera_cfg=cfg)
    fov = [math.degrees(2 * math.atan(0.5 / ds[i]["intrinsics"][1, 1].item())) for i in range(3)]
    assert fov == pytest.approx([20.0, 33.0, cfg.fov_deg], abs=1e-4)
    want = camlib.params_to_cameras(camlib.CameraParams(*(torch.tensor([v]) for v in (
        0.3, 1.2, 1.0, 20.0, 0.5, 1.0, 0.08))), cfg)
    assert torch.allclose(ds[0]["cam2world"], want.cam2world[0], atol=1e-6)
    back = camlib.params_from_cameras(camlib.from_matrices(ds[0]["cam2world"][None], ds[0]["intrinsics"][None], cfg),
                                      cfg)
    assert back.lookat_radius.item() <= 0.08 + 1e-6 and back.fov_deg.item() == pytest.approx(20.0, abs=1e-4)
    plain = ImageDataset(str(folder), camera_cfg=cfg)._c2w  # an image without a record: from_angles'
    assert torch.allclose(plain[2], camlib.from_angles(0.9, 1.2, 1.0, cfg.fov_deg, cfg=cfg).cam2world[0].float())
    bad = {"camera_angles": angles, "camera_params": {"v0.png": {"fov": 20.0}}}
    (folder / "dataset.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="camera_params of 'v0.png'"):
        ImageDataset(str(folder), camera_cfg=cfg)


def test_render_with_fov_range_and_look_at_offsets(tmp_path):
    """render --fov-range/--lookat-radius/--yaw-range/--pitch-range: per view a field of view in the range
    and a look-at point in the ball, recorded in camera_params and read back by the loader."""
    from core.data import mesh_render

    try:
        mesh_render.egl_context()
    except UserError as e:
        pytest.skip(str(e))
    import trimesh

    from core.dataset_tool import main

    meshes = tmp_path / "meshes"
    meshes.mkdir()
    trimesh.creation.box(extents=(1.0, 0.6, 0.4)).export(meshes / "box.ply")
    out = tmp_path / "views.zip"
    assert main(["render", "--meshes", str(meshes), "--out", str(out), "--views", "8", "--res", "16", "--radius", "1",
                 "--fov-range", "22,32", "--lookat-radius", "0.08", "--yaw-range=-1.5,1.5", "--pitch-range", "0.8,2.3",
                 "--depth-degrade"]) == 0
    meta = json.loads(zipfile.ZipFile(out).read("dataset.json"))
    recs = list(meta["camera_params"].values())
    assert len(recs) == 8 and meta["render"]["fov_range"] == [22.0, 32.0]
    assert all(22 <= r["fov_deg"] <= 32 and 0 <= r["lookat_radius"] <= 0.08 and r["radius"] == 1.0 for r in recs)
    assert len({round(r["fov_deg"], 3) for r in recs}) == 8
    ang = np.array(list(meta["camera_angles"].values()))
    assert (np.abs(ang[:, 0]) <= 1.5).all() and ((ang[:, 1] >= 0.8) & (ang[:, 1] <= 2.3)).all()
    cfg = get_preset("3dgp_demo").camera
    ds = ImageDataset(str(out), camera_cfg=cfg, depth=True)
    name = ds.images[0]
    r = meta["camera_params"][name]
    fov = math.degrees(2 * math.atan(0.5 / ds[0]["intrinsics"][1, 1].item()))
    assert fov == pytest.approx(r["fov_deg"], abs=1e-3)
    back = camlib.params_from_cameras(camlib.from_matrices(ds[0]["cam2world"][None], ds[0]["intrinsics"][None], cfg),
                                      cfg)
    assert back.lookat_radius.item() <= r["lookat_radius"] + 1e-5
    assert back.yaw.item() == pytest.approx(meta["camera_angles"][name][0], abs=1e-4)


def test_metrics_render_the_learned_camera_distribution(monkeypatch):
    """FID/KID's fakes of a 3DGP model are rendered from G.camera_params (a field of view per camera, from
    the camera generator), NFS's from its mean camera."""
    from core.metrics import evaluate

    cfg = tiny_3dgp_config()
    G = TriPlaneGenerator(cfg).eval()
    seen = []
    render = G.render
    monkeypatch.setattr(G, "render", lambda planes, cams, **k: seen.append(cams) or render(planes, cams, **k))
    feats = evaluate.generated_features(G, 6, 16, lambda imgs: torch.zeros(imgs.shape[0], 2048), batch=3,
                                        progress=False)
    assert feats.shape == (6, 2048)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, cfg.generator.z_dim, generator=gen)
    want = camlib.params_to_cameras(G.camera_params(z, None, prior=camlib.sample_prior(cfg.camera, 6, gen)), cfg.camera)
    got = camlib.Cameras.cat(seen)
    assert torch.allclose(got.cam2world, want.cam2world, atol=1e-6) and torch.allclose(got.intrinsics, want.intrinsics)
    mean = evaluate.mean_cameras(G)
    assert torch.allclose(mean.intrinsics, camlib.params_to_cameras(G.mean_camera_params(), cfg.camera).intrinsics)
    cfg2 = get_preset("demo")
    assert evaluate.mean_cameras(TriPlaneGenerator(tiny_train_config())) is None and cfg2.camera.fov_dist == "fixed"


def test_two_cpu_processes_with_gloo(data3dgp, tmp_path):
    """`core.train --preset 3dgp_demo --gpus 2` (tiny overrides): both processes average the same set of
    gradients (camera generator, adaptor, KD head included) and the replicas stay equal."""
    import os
    import subprocess
    import sys

    from core.checkpoint import load_checkpoint
    from tests.tiny_train import as_overrides

    sets = [f"--set={o}" for o in as_overrides(tiny_3dgp_config(), get_preset("3dgp_demo"))
            if not o.startswith(("train.kimg=", "train.batch="))]
    cmd = [sys.executable, "-m", "core.train", "--data", data3dgp, "--outdir", str(tmp_path), "--preset", "3dgp_demo",
           "--batch", "8", "--device", "cpu", "--gpus", "2", "--max-steps", "2", *sets]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = load_checkpoint(sorted(tmp_path.glob("network-snapshot-*.pt"))[-1])
    assert data["rng"]["world"] == 2 and data["progress"]["cur_nimg"] == 16
    assert any(k.startswith("kd_head.") for k in data["D"]) and any(k.startswith("camera_gen.") for k in data["G"])
