"""The training panel in the real window under Xvfb (tests/viewer/gui_driver_train.py): make the
synthetic set, start a tiny run, see stats plotted and a snapshot auto-loaded (camera kept), stop it
cleanly. Checked here against the run folder itself (stats.jsonl, the snapshots, /proc).
Skipped, with the reason, when imgui-bundle is missing or no X server can be started.
"""

import json
import zipfile
from pathlib import Path

import pytest
import torch
from viewer_testlib import run_gui_driver

from core.checkpoint import load_checkpoint

pytest.importorskip("imgui_bundle", reason="the GUI tests need imgui-bundle (pip install -r requirements.txt)")
pytest.importorskip("OpenGL", reason="the GUI tests need PyOpenGL (pip install -r requirements.txt)")

DRIVER = Path(__file__).with_name("gui_driver_train.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gui_train")
    out = tmp / "out"
    results, _ = run_gui_driver(DRIVER, [], tmp, out, timeout=400)
    return results, out


def test_every_tab_is_visible_at_1280x800_with_a_mesh_panel(run):
    tabs = run[0]["tabs"]
    assert {"Latent", "Camera", "Render", "Model", "Mesh", "Training", "Export", "Performance", "Help"} <= set(tabs)
    for name, strip in tabs.items():
        assert strip is not None, f"{name} is not docked"
        assert not strip["scroll_buttons"] and strip["ideal"] <= strip["bar"], (name, strip)
    assert tabs["Mesh"]["node"] == tabs["Training"]["node"] != tabs["Latent"]["node"]  # tools on their own dock


def test_panel_makes_the_synthetic_set_and_picks_the_output_folder(run):
    results, out = run
    p = results["picker"]
    assert p["opened"] and p["picked"] == str(out) and p["typed"] == str(out / "run")
    d = results["dataset"]
    assert d["ok"]
    with zipfile.ZipFile(d["path"]) as z:
        labels = json.loads(z.read("dataset.json"))
    assert len(labels["camera_angles"]) == 3 * 4  # 3 objects x 4 views, as typed in the panel
    assert sorted({k.split("/")[0] for k in labels["camera_angles"]}) == ["obj0000", "obj0001", "obj0002"]


def test_run_streams_stats_and_auto_loads_a_snapshot_keeping_the_camera(run):
    results, out = run
    live = results["live"]
    assert live["ok"] and live["status"] == "running" and live["records"] >= 3
    assert live["series"]["loss_G"] == live["series"]["loss_D"] == live["records"]  # one plotted point per tick
    run_dir = out / "run"
    assert Path(live["model_spec"]).parent == run_dir and live["model_spec"].endswith(".pt")
    assert live["z_dim"] == 16  # the tiny run's generator, not random:demo's (z 128)
    assert live["yaw"] == pytest.approx(0.9) and live["shown_yaw"] == pytest.approx(0.9)
    assert live["total_kimg"] == 1000.0 and 0 < live["progress"] < 0.001
    cmd = results["started"]["cmd"]
    assert cmd[1:3] == ["-m", "core.train"] and "--set=train.snapshot_ticks=2" in cmd


def test_stop_ends_the_process_and_leaves_an_intact_snapshot(run):
    results, out = run
    s = results["stopped"]
    assert s["ok"] and s["status"] == "stopped" and s["returncode"] == 0, s
    assert not Path(f"/proc/{s['pid']}").exists() or "Z" in Path(f"/proc/{s['pid']}/stat").read_text().split()[2]
    assert "stop requested" in s["log"]
    run_dir = out / "run"
    snaps = sorted(run_dir.glob("network-snapshot-*.pt"))
    assert str(snaps[-1]) == s["snapshot"]
    data = load_checkpoint(snaps[-1])
    records = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert data["progress"]["cur_nimg"] == round(records[-1]["kimg"] * 1000) > 0
    assert all(torch.isfinite(t).all() for t in data["G_ema"].values())
    assert json.loads((run_dir / "train.pid.json").read_text())["returncode"] == 0
    assert (out / "running.png").stat().st_size > 0 and (out / "stopped.png").stat().st_size > 0
