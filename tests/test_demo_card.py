"""scripts/demo_card.py, the model card's pictures and numbers, end to end on a random model and a
tiny synthetic set (without the metrics, which tests/test_metrics.py covers)."""

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cameras as camlib
from core.data.synthetic import make_synthetic

ROOT = Path(__file__).resolve().parents[1]


def _demo_card():
    spec = importlib.util.spec_from_file_location("demo_card", ROOT / "scripts" / "demo_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_opacity_stats_on_drawn_maps():
    stats = _demo_card().opacity_stats
    n = 64
    yy, xx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    disk = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 4) ** 2).float()  # 79% of the central 32x32
    assert stats(disk[None]) == {"centre_p90_min": 1.0, "border_max": 0.0}
    # the 90th percentile: a fifth of the window opaque passes, a twentieth does not
    fifth, twentieth = torch.zeros(n, n), torch.zeros(n, n)
    fifth[16:48, 16:48][: 32 // 5 + 1] = 1       # 7 of 32 rows
    twentieth[16:48, 16:48][:1] = 1              # 1 of 32 rows
    assert stats(fifth[None])["centre_p90_min"] == 1.0
    assert stats(twentieth[None])["centre_p90_min"] == 0.0
    # the border is the outer 4 pixels (a sixteenth of 64) on each side
    band = torch.full((n, n), 0.5)
    band[4:-4, 4:-4] = 0
    assert stats(band[None]) == {"centre_p90_min": 0.0, "border_max": 0.5}
    band[4, 4:-4] = 1  # just inside the band: not border
    assert stats(band[None])["border_max"] == 0.5
    # over several views: the weakest centre and the worst border
    fog = torch.full((n, n), 0.3)
    assert stats(torch.stack([disk, fog, band])) == {"centre_p90_min": 0.0, "border_max": 0.5}
    assert stats(torch.stack([disk, fog])) == {"centre_p90_min": 0.3, "border_max": 0.3}


def test_card_pictures_and_mesh_stats(tmp_path):
    data = tmp_path / "syn.zip"
    make_synthetic(data, num_objects=3, views=4, res=64, seed=0)  # the demo preset's 64^2: no resizing
    out = tmp_path / "card"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "scripts/demo_card.py", "--ckpt", "random:demo", "--data", str(data),
                        "--outdir", str(out), "--seeds", "0", "--mesh-res", "32", "--res", "32", "--overview", "3",
                        "--no-metrics"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    stats = printed["meshes"]
    assert [m["seed"] for m in stats] == [0]
    assert [o["seed"] for o in printed["opacity"]] == [0]
    assert 0 <= printed["opacity"][0]["centre_p90_min"] <= 1 and 0 <= printed["opacity"][0]["border_max"] <= 1

    # samples: one row (seed 0) of 8 views at --res
    assert Image.open(out / "demo_samples.png").size == (8 * 32, 32)

    # overview: 16 real images spread evenly through the set (read here straight from the zip), a
    # quarter-tile gap, then seeds 0-2 and white padding to the end of their row
    ov = np.asarray(Image.open(out / "demo_overview.png").convert("RGB"))
    assert ov.shape == (64 + 16 + 64, 16 * 64, 3)
    with zipfile.ZipFile(data) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        for k, i in enumerate(np.linspace(0, len(names) - 1, 16).round().astype(int)):
            real = np.asarray(Image.open(io.BytesIO(z.read(names[i]))).convert("RGB"))
            assert (ov[:64, 64 * k:64 * (k + 1)] == real).all(), k
    assert (ov[64:80] == 255).all()
    fakes = [ov[80:, 64 * k:64 * (k + 1)].astype(int) for k in range(16)]
    assert np.abs(fakes[0] - fakes[1]).mean() > 1 and np.abs(fakes[1] - fakes[2]).mean() > 1
    assert all((f == 255).all() for f in fakes[3:])


def test_card_of_a_class_conditional_model_shows_every_class(tmp_path):
    from core.checkpoint import build_generator, save_checkpoint
    from core.config import get_preset

    data = tmp_path / "syn.zip"
    make_synthetic(data, num_objects=2, views=2, res=64, seed=0)
    cfg = get_preset("demo")
    cfg.generator.c_dim = 3
    ckpt = tmp_path / "cond.pt"
    save_checkpoint(ckpt, cfg, build_generator(cfg, seed=1), meta={"class_names": ["ball", "box", "cup"]})
    out = tmp_path / "card"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "scripts/demo_card.py", "--ckpt", str(ckpt), "--data", str(data),
                        "--outdir", str(out), "--seeds", "4", "--mesh-res", "32", "--res", "16", "--meshes", "2",
                        "--no-metrics"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    # a row per class (seed 4 each), meshes of the first two
    assert [(o["seed"], o["class"], o["name"]) for o in printed["opacity"]] == [
        (4, 0, "ball, seed 4"), (4, 1, "box, seed 4"), (4, 2, "cup, seed 4")]
    assert [(m["seed"], m["class"]) for m in printed["meshes"]] == [(4, 0), (4, 1)]
    samples = np.asarray(Image.open(out / "demo_samples.png").convert("RGB")).astype(int)
    assert samples.shape == (3 * 16, 8 * 16, 3)
    rows = [samples[16 * k:16 * (k + 1)] for k in range(3)]
    assert np.abs(rows[0] - rows[1]).mean() > 1 and np.abs(rows[1] - rows[2]).mean() > 1  # the label is used
    # overview: the real row, the gap, then a row of seeds 0-15 per class
    assert Image.open(out / "demo_overview.png").size == (16 * 64, 64 + 16 + 3 * 64)


def _labelled(path, tmp_path):
    """The synthetic set with each object its own class (names 'a', 'b', ...)."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(files.pop("dataset.json"))
    objects = sorted({n.split("/")[0] for n in files})
    meta["labels"] = {n: objects.index(n.split("/")[0]) for n in files}
    meta["class_names"] = [chr(97 + k) for k in range(len(objects))]
    out = tmp_path / "labelled.zip"
    with zipfile.ZipFile(out, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
        z.writestr("dataset.json", json.dumps(meta))
    return out


def test_pairs_show_each_class_from_the_reals_cameras(tmp_path):
    from core.checkpoint import build_generator
    from core.data.dataset import ImageDataset
    from core.runtime import class_label, z_from_seed
    from tests.conftest import tiny_config

    src = tmp_path / "syn.zip"
    make_synthetic(src, num_objects=3, views=5, res=16, seed=0)
    cfg = tiny_config()
    cfg.generator.c_dim = 3
    G = build_generator(cfg, seed=2).eval()
    ds = ImageDataset(str(_labelled(src, tmp_path)), 16, mirror=False, camera_cfg=cfg.camera)
    picture, l1 = _demo_card().pairs(G, ds, per_class=3)
    got = np.asarray(picture).astype(int)
    assert got.shape == (6 * 16, 3 * 16, 3) and list(l1) == ["a", "b", "c"]
    for k in range(3):
        for j, view in enumerate((0, 2, 4)):  # views spread through the class: first, middle, last
            i = 5 * k + view
            tile = lambda row, j=j: got[16 * row:16 * (row + 1), 16 * j:16 * (j + 1)]  # noqa: E731
            assert (tile(2 * k) == ds[i]["image"].permute(1, 2, 0).numpy()).all()  # the real view
            # below it, class k's seed 0 rendered by core from that image's own camera (angles -> camera)
            yaw, pitch = (float(a) for a in ds[i]["angles"])
            cam = camlib.from_angles(yaw, pitch, cfg.camera.radius, cfg.camera.fov_deg, cfg=cfg.camera)
            with torch.no_grad():
                w = G.mapping(z_from_seed(0, cfg.generator.z_dim), class_label(3, k))
                ref = G.render(G.planes(w), cam, resolution=16)["image"]
            want = ((ref[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
            assert np.abs(tile(2 * k + 1) - want).max() <= 2, (k, j)
        real, fake = got[32 * k:32 * k + 16], got[32 * k + 16:32 * (k + 1)]
        assert l1["abc"[k]] == pytest.approx(np.abs(real - fake).mean(), abs=0.01)
