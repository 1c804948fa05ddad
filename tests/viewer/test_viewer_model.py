"""Opening models: spec normalisation, run-folder snapshots newest first, loader errors as messages."""

import time

import pytest
import torch
from viewer_testlib import tiny_cfg

from core.checkpoint import build_generator, save_checkpoint
from core.errors import UserError
from viewer.model import ModelLoader, list_snapshots, resolve_spec


def test_resolve_spec(tmp_path, monkeypatch):
    import viewer.model as vm
    assert resolve_spec("  random:demo ") == "random:demo"
    assert resolve_spec(f"'{tmp_path}'") == str(tmp_path)
    fake = tmp_path / "demo.pt"
    monkeypatch.setattr(vm, "BUNDLED_DEMO_CHECKPOINT", fake)
    with pytest.raises(UserError, match=r"demo model is missing \(.*demo.pt\)"):
        resolve_spec("demo")
    assert vm.default_model_spec() == "random:demo"  # the stand-in while the file is missing
    fake.write_bytes(b"x")
    assert resolve_spec(" demo ") == str(fake) and vm.default_model_spec() == str(fake)
    with pytest.raises(UserError):
        resolve_spec("  ")


def test_run_folder_snapshots_newest_first(tmp_path):
    for k in (0, 200, 40):
        (tmp_path / f"network-snapshot-{k:06d}.pt").write_bytes(b"")
    assert [p.name for p in list_snapshots(tmp_path)] == [
        "network-snapshot-000200.pt", "network-snapshot-000040.pt", "network-snapshot-000000.pt"]
    with pytest.raises(UserError, match="no network-snapshot"):
        list_snapshots(tmp_path / "..")


def _wait(loader):
    for _ in range(400):
        done = loader.poll()
        if done is not None:
            return done
        time.sleep(0.01)
    raise AssertionError("the loader never finished")


def test_loader_success_and_errors(tmp_path):
    loader = ModelLoader(torch.device("cpu"))
    cfg = tiny_cfg()
    save_checkpoint(tmp_path / "network-snapshot-000004.pt", cfg, build_generator(cfg))
    loader.load(str(tmp_path))  # a run folder: its newest snapshot
    model, error, spec = _wait(loader)
    assert error is None and model.cfg.generator.z_dim == 16 and spec == str(tmp_path)
    assert loader.loading is None
    (tmp_path / "bad.pt").write_bytes(b"junk")
    loader.load(str(tmp_path / "bad.pt"))
    model, error, _ = _wait(loader)
    assert model is None and "corrupt" in error
    loader.load("random:nope")
    model, error, _ = _wait(loader)
    assert model is None and "unknown preset" in error
