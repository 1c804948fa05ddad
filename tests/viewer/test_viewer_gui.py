"""The real window under Xvfb, driven by imgui-bundle's test engine (tests/viewer/gui_driver.py).

One driver run (about 20 s) loads random:demo and a checkpoint file through the model panel, browses
with the "Open checkpoint" file dialog (a run folder, a broken file, the checkpoint),
drags on the image, moves the interpolation slider and exports a screenshot; the tests below check
its record against independent oracles: the lerp formula and core's G.render called here.
Skipped, with the reason, when imgui-bundle is missing or no X server can be started.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from viewer_testlib import run_gui_driver, tiny_cfg

from core import cameras as camlib
from core.checkpoint import build_generator, load_generator, save_checkpoint
from core.images import image_to_uint8
from core.runtime import z_from_seed

pytest.importorskip("imgui_bundle", reason="the GUI tests need imgui-bundle (pip install -r requirements.txt)")
pytest.importorskip("OpenGL", reason="the GUI tests need PyOpenGL (pip install -r requirements.txt)")

DRIVER = Path(__file__).with_name("gui_driver.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the driver once; returns (results dict, out dir, checkpoint path)."""
    tmp = tmp_path_factory.mktemp("gui")
    ckpt = tmp / "tiny.pt"
    cfg = tiny_cfg()
    save_checkpoint(ckpt, cfg, build_generator(cfg, seed=3))
    (tmp / "run").mkdir()  # a run folder and a broken file for the file dialog
    save_checkpoint(tmp / "run" / "network-snapshot-000004.pt", cfg, build_generator(cfg, seed=4))
    (tmp / "broken.pt").write_bytes(b"not a checkpoint")
    (tmp / "notes.txt").write_text("hidden by the dialog's filter")
    cond = tmp_path_factory.mktemp("cond") / "cond.pt"  # class-conditional, for the keyframes' own classes
    # (in a folder of its own: the file dialog's listing of tmp is checked below)
    cfg.generator.c_dim = 3
    save_checkpoint(cond, cfg, build_generator(cfg, seed=5), meta={"class_names": ["ball", "box", "cup"]})
    results, _ = run_gui_driver(DRIVER, [str(ckpt), str(cond)], tmp, tmp / "out", timeout=240)
    results["cond_ckpt"] = str(cond)
    assert not (tmp / "config" / "session.json").exists()  # the driver runs without a session
    return results, tmp / "out", ckpt


def test_gui_loads_random_demo_and_checkpoint_file(run):
    results, _, ckpt = run
    assert results["demo"]["ok"] and results["demo"]["spec"] == "random:demo" and results["demo"]["frames"] >= 1
    assert results["demo"]["drop_enabled"]  # the GLFW drop callback is installed on the window
    assert results["file"]["ok"] and results["file"]["spec"] == str(ckpt) and results["file"]["error"] is None
    assert results["file"]["z_dim"] == 16


def test_gui_drag_orbits_and_a_new_frame_arrives(run):
    d = run[0]["drag"]
    assert d["ok"]
    assert d["yaw1"] > d["yaw0"] + 0.5  # dragged 120 px right: the camera turned
    assert d["pitch1"] < d["pitch0"] - 0.1  # and 40 px down: it rose
    assert d["gen1"] > d["gen0"] and d["shown_yaw"] == pytest.approx(d["yaw1"])


def test_gui_interpolation_slider_sets_the_blend(run):
    results, out, ckpt = run
    i = results["interp"]
    assert i["ok"] and i["interp"] and i["seeds"] == [2, 5] and i["mode"] == "lerp-w"
    assert i["t"] == pytest.approx(0.3, abs=1e-6)
    G, _ = load_generator(str(ckpt))
    w2, w5 = (G.mapping(z_from_seed(s, 16), psi=i["psi"]) for s in (2, 5))
    expected = w2 + i["t"] * (w5 - w2)
    assert np.allclose(np.load(out / "w_interp.npy"), expected.numpy(), atol=1e-6)


def test_gui_keyframes_of_a_conditional_model_have_their_own_class(run):
    results, out, _ = run
    c = results["classes"]
    assert c["ok"] and c["seeds"] == [2, 5] and c["classes"] == [2, 0] and c["mode"] == "lerp-w"
    G, _ = load_generator(results["cond_ckpt"])
    onehot = torch.eye(3)
    w2, w5 = (G.mapping(z_from_seed(s, 16), onehot[k][None], psi=c["psi"]) for s, k in ((2, 2), (5, 0)))
    assert np.allclose(np.load(out / "w_classes.npy"), ((w2 + w5) / 2).numpy(), atol=1e-6)


def test_gui_screenshot_matches_core_render(run):
    results, out, ckpt = run
    s = results["screenshot"]
    assert s["ok"], s["message"]
    png = Path(s["message"].split("saved ", 1)[1])
    assert png.parent == out / "exports"
    got = np.asarray(Image.open(png).convert("RGB")).astype(int)
    G, _ = load_generator(str(ckpt))
    seeds, t = s["latent"]["seeds"], s["latent"]["t"]
    w_a, w_b = (G.mapping(z_from_seed(k, 16)) for k in seeds)
    w = w_a + t * (w_b - w_a)
    yaw, pitch, radius, fov, look_at = s["camera"]
    cams = camlib.from_angles(yaw, pitch, radius, fov, tuple(look_at), cfg=G.cfg.camera)
    with torch.no_grad():
        ref = G.render(G.planes(w), cams, resolution=s["resolution"], num_coarse=s["num_coarse"],
                       num_fine=s["num_fine"])
    expected = image_to_uint8(ref["image"][0]).astype(int)
    assert got.shape == expected.shape == (s["resolution"], s["resolution"], 3)
    diff = np.abs(got - expected)
    assert diff.mean() < 0.5 and diff.max() <= 2, (diff.mean(), diff.max())
    assert not math.isclose(float(expected.std()), 0.0)  # not a blank picture


def test_gui_depth_display_shader_matches_cpu_colormap(run):
    d = run[0]["depth_display"]
    assert d["ok"] and d["shape"][2] == 3 and d["std"] > 5  # a real picture, not a flat one
    assert d["frac_off"] < 0.01 and d["max"] <= 40, d  # a few pixels may round to the next table entry


def test_gui_wheel_zooms_and_video_exports(run):
    results = run[0]
    z = results["zoom"]
    assert z["ok"] and z["r1"] == pytest.approx(z["r0"] * math.exp(-0.2), rel=1e-4)
    v = results["video"]
    assert v["ok"] and v["error"] is None and v["frames"] == 4
    assert len(v["outputs"]) == 1 and v["outputs"][0].endswith(".mp4") and Path(v["outputs"][0]).stat().st_size > 0


def test_gui_file_dialog_browses_and_opens(run):
    results, out, ckpt = run
    d = results["dialog"]
    folder = ckpt.parent
    assert d["opened"] and d["start"] == str(folder)  # Ctrl+O starts in the current model's folder
    assert d["names"][:2] == ["out/", "run/"] and d["names"][-2:] == ["broken.pt", "tiny.pt"]
    assert "notes.txt" not in d["names"]
    assert d["entered"] and d["run_names"] == ["network-snapshot-000004.pt"]
    assert d["up"] and d["run_opened"] and d["run_spec"] == str(folder / "run")
    assert d["run_source"] == str(folder / "run" / "network-snapshot-000004.pt")  # newest snapshot
    assert d["start2"] == str(folder / "run") and d["typed"]
    assert d["broken_error"] and d["open_after_error"]  # a failed load keeps the dialog open with its error
    assert d["ok"] and d["spec"] == str(ckpt) and d["browse_dir"] == str(folder)
    assert (out / "file_dialog.png").stat().st_size > 0
