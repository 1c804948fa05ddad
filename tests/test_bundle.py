"""Bundling a training snapshot for viewing, and the `demo` --ckpt name."""

import subprocess
import sys

import pytest
import torch

from core import checkpoint as ckptlib
from core.bundle import bundle
from core.checkpoint import build_generator, load_checkpoint, load_generator, save_checkpoint
from core.errors import UserError
from tests.conftest import tiny_config


def _snapshot(tmp_path):
    cfg = tiny_config()
    G, G_ema = build_generator(cfg, seed=1), build_generator(cfg, seed=2)
    run = tmp_path / "run"
    run.mkdir()
    path = run / "network-snapshot-000004.000.pt"
    save_checkpoint(path, cfg, G_ema, G=G, opt_G={"state": {}}, meta={"kimg": 4.0, "dataset": "toy"})
    return cfg, G_ema, run, path


def test_bundle_keeps_g_ema_only(tmp_path):
    cfg, G_ema, run, snap = _snapshot(tmp_path)
    out = tmp_path / "bundled.pt"
    bundle(str(run), out, note="hello")  # the run folder resolves to its newest snapshot
    data = load_checkpoint(out)
    assert "G" not in data and "opt_G" not in data
    assert data["meta"]["kimg"] == 4.0 and data["meta"]["note"] == "hello"
    assert data["meta"]["source_digest"] == load_checkpoint(snap)["digest"]
    G2, info = load_generator(str(out))
    for k, v in G_ema.state_dict().items():
        assert torch.equal(v, G2.state_dict()[k]), k
    assert out.stat().st_size < snap.stat().st_size


def test_bundle_refuses_to_overwrite_its_source(tmp_path):
    _, _, _, snap = _snapshot(tmp_path)
    before = snap.read_bytes()
    with pytest.raises(UserError, match="source snapshot itself"):
        bundle(str(snap), snap)
    assert snap.read_bytes() == before


def test_demo_spec_resolves_to_the_bundled_file(tmp_path, monkeypatch):
    cfg, G_ema, _, snap = _snapshot(tmp_path)
    fake = tmp_path / "checkpoints" / "demo.pt"
    bundle(str(snap), fake)
    monkeypatch.setattr(ckptlib, "BUNDLED_DEMO", fake)
    G, info = load_generator("demo")
    assert info["source"] == str(fake)
    monkeypatch.setattr(ckptlib, "BUNDLED_DEMO", tmp_path / "missing.pt")
    with pytest.raises(UserError, match="bundled demo model is missing"):
        load_generator("demo")


def test_bundle_cli_error_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "core.bundle", "--ckpt", str(tmp_path / "nope.pt"),
                        "--out", str(tmp_path / "o.pt")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no checkpoint" in r.stderr


def test_bundle_viewer_class_is_checked_and_kept(tmp_path):
    _, _, _, snap = _snapshot(tmp_path)
    with pytest.raises(UserError, match="unconditional"):
        bundle(str(snap), tmp_path / "a.pt", viewer_class=0)
    assert not (tmp_path / "a.pt").exists()
    cfg = tiny_config()
    cfg.generator.c_dim = 3
    cond = tmp_path / "cond.pt"
    save_checkpoint(cond, cfg, build_generator(cfg, seed=1), meta={"kimg": 1.0})
    with pytest.raises(UserError, match="0-2"):
        bundle(str(cond), tmp_path / "b.pt", viewer_class=3)
    bundle(str(cond), tmp_path / "c.pt", viewer_class=2)
    assert load_checkpoint(tmp_path / "c.pt")["meta"]["viewer_class"] == 2
