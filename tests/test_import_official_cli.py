"""python -m core.import_official: a one-time, weights-only conversion; fine-tuning from it; refusals."""

import shutil
from pathlib import Path

import pytest
import torch

from core import import_official
from core import train as train_cli
from core.checkpoint import load_checkpoint, load_generator
from core.errors import UserError
from core.official import epigraf
from core.official.load import read_snapshot

FIX = Path(__file__).parent / "fixtures"
SNAP = FIX / "snapshot_ffhq_bg_tiny.pkl"


def test_convert_once_then_open_weights_only(tmp_path, capsys):
    out = tmp_path / "ffhq_bg.pt"
    assert import_official.main([str(SNAP), "--out", str(out)]) == 0
    assert "official EpiGRAF snapshot" in capsys.readouterr().out
    raw = torch.load(out, weights_only=True)  # our format: plain data only
    assert raw["version"] == 2 and "G" not in raw and raw["meta"]["source_kind"] == "official-epigraf"
    G1, _ = load_generator(str(SNAP))
    G2, info = load_generator(str(out))
    assert info["meta"]["converted_from"] == SNAP.name
    z = torch.randn(1, G1.cfg.generator.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = G1(z, G1.default_cameras(), resolution=8)["image"]
        b = G2(z, G2.default_cameras(), resolution=8)["image"]
    assert torch.equal(a, b)
    with pytest.raises(UserError, match="exists"):  # never overwrites what the user has
        import_official.import_official(SNAP, out)
    with pytest.raises(UserError, match="not a pickle"):
        import_official.import_official(out, tmp_path / "x.pt")
    with pytest.raises(UserError, match="no file"):
        import_official.import_official(tmp_path / "missing.pkl", tmp_path / "x.pt")


def test_fine_tune_an_official_model(tmp_path, dataset, capsys):
    out = tmp_path / "official.pt"
    import_official.main([str(SNAP), "--out", str(out), "--training-state"])
    saved = load_checkpoint(out)
    assert {"G", "progress", "augment"} <= saved.keys() and saved["progress"]["cur_nimg"] == 4000
    sets = ["train.batch=4", "train.workers=0", "train.metrics=", "train.tick_kimg=0.004", "train.snapshot_ticks=1",
            "train.r1_interval=2", "train.camera_source=prior", "train.grid_res=16"]
    argv = ["--data", dataset, "--outdir", str(tmp_path / "run"), "--resume", str(out), "--device", "cpu",
            "--max-steps", "1"] + [f"--set={s}" for s in sets]
    assert train_cli.main(argv) == 0
    log = capsys.readouterr().out
    assert "freshly initialised D" in log and "resumed from" in log
    snap = sorted((tmp_path / "run").glob("network-snapshot-*.pt"))[-1]
    data = load_checkpoint(snap)
    assert data["progress"]["cur_nimg"] == 4004
    assert any(not torch.equal(data["G"][k], saved["G"][k]) for k in saved["G"]), "G did not train"


def test_unsupported_options_are_refused_with_the_option_named():
    for path, value, option in ((("model", "generator", "backbone"), "stylegan3-r", "backbone"),
                                (("model", "generator", "tri_plane", "has_view_cond"), True, "has_view_cond"),
                                (("model", "generator", "bg_model", "type"), "plane", "bg_model.type"),
                                (("dataset", "last_back"), True, "last_back")):
        snap = read_snapshot(SNAP)
        node = snap["G_ema"].state["cfg"]
        while node.state.get("_parent") is not None:
            node = node.state["_parent"]
        for k in path[:-1]:
            node = node.state["_content"][k]
        node.state["_content"][path[-1]].state["_val"] = value
        with pytest.raises(UserError) as err:
            epigraf.convert(snap, "'test'")
        msg = str(err.value)
        assert option in msg and repr(value) in msg and "\n" not in msg, msg


def test_a_config_layout_without_the_camera_is_refused():
    """An official config whose dataset section keeps its cameras elsewhere (older layouts used
    dataset.sampling) would otherwise render with default cameras: it is refused in one line."""
    snap = read_snapshot(SNAP)
    node = snap["G_ema"].state["cfg"]
    while node.state.get("_parent") is not None:
        node = node.state["_parent"]
    dataset = node.state["_content"]["dataset"].state["_content"]
    dataset["sampling"] = dataset.pop("camera")
    with pytest.raises(UserError) as err:
        epigraf.convert(snap, "'test'")
    assert "no camera (fov, ray_start, ray_end)" in str(err.value) and "\n" not in str(err.value)


def test_official_run_folder_opens_its_newest_snapshot(tmp_path):
    shutil.copy(SNAP, tmp_path / "network-snapshot-000004.pkl")
    shutil.copy(FIX / "snapshot_megascans_tiny.pkl", tmp_path / "network-snapshot-000008.pkl")
    G, info = load_generator(str(tmp_path))
    assert info["source"].endswith("network-snapshot-000008.pkl") and G.cfg.generator.c_dim == 3
