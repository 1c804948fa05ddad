"""run_viewer.py: no display -> one line and exit 2; scripted screenshot under Xvfb equals core's render."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from viewer_testlib import gui_env, start_xvfb, tiny_cfg

from core import cameras as camlib
from core.checkpoint import build_generator, load_generator, save_checkpoint
from core.images import image_to_uint8
from core.runtime import class_label, z_from_seed

ROOT = Path(__file__).resolve().parents[2]


def _run(args, env, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "run_viewer.py"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_no_display_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["EPIGRAF_STUDIO_CONFIG_DIR"] = str(tmp_path)
    proc = _run(["random:demo"], env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no display found (DISPLAY is unset)")
    assert "xvfb-run -a python run_viewer.py" in lines[0] and "python -m core.generate" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bad_arguments_exit_2(tmp_path):
    env = dict(os.environ, EPIGRAF_STUDIO_CONFIG_DIR=str(tmp_path))
    proc = _run(["random:demo", "--camera", "1,x", "--screenshot", str(tmp_path / "a.png")], env)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --camera")


@pytest.fixture(scope="module")
def display():
    pytest.importorskip("imgui_bundle", reason="the viewer needs imgui-bundle (pip install -r requirements.txt)")
    proc, display = start_xvfb()
    if proc is None:
        pytest.skip(f"scripted-mode tests skipped: {display}")
    yield display
    proc.terminate()
    proc.wait(10)


def test_scripted_screenshot_matches_core(display, tmp_path):
    cfg = tiny_cfg()
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, cfg, build_generator(cfg, seed=1))
    shot, win = tmp_path / "shot.png", tmp_path / "window.png"
    proc = _run([str(ckpt), "--screenshot", str(shot), "--window-screenshot", str(win), "--seed", "7",
                 "--camera", "0.5,1.3,1.1,35", "--res", "48", "--size", "900x600"],
                gui_env(display, tmp_path / "config"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "config" / "session.json").exists()  # scripted runs leave the session alone
    G, _ = load_generator(str(ckpt))
    cams = camlib.from_angles(0.5, 1.3, 1.1, 35.0, cfg=G.cfg.camera)
    with torch.no_grad():
        ref = G.render(G.planes(G.mapping(z_from_seed(7, 16))), cams, resolution=48)
    got = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    diff = np.abs(got - image_to_uint8(ref["image"][0]).astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 2
    assert Image.open(win).size == (900, 600)


def _class_shown(display, tmp_path, meta: dict, args: list[str]) -> list[float]:
    """Screenshot seed 7 of a 3-class model (checkpoint meta `meta`); its mean difference from each
    class's render by core."""
    cfg = tiny_cfg()
    cfg.generator.c_dim = 3
    ckpt = tmp_path / "cond.pt"
    save_checkpoint(ckpt, cfg, build_generator(cfg, seed=1), meta={"class_names": ["ball", "box", "cup"], **meta})
    shot = tmp_path / "shot.png"
    proc = _run([str(ckpt), "--screenshot", str(shot), "--seed", "7", *args, "--camera", "0.5,1.3",
                 "--res", "32", "--size", "900x600"], gui_env(display, tmp_path / "config"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    G, _ = load_generator(str(ckpt))
    c = G.cfg.camera
    cams = camlib.from_angles(0.5, 1.3, c.radius, c.fov_deg, cfg=c)  # --camera yaw,pitch: the model's radius and fov
    got = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    diffs = []
    with torch.no_grad():
        for k in range(3):
            ref = G.render(G.planes(G.mapping(z_from_seed(7, 16), class_label(3, k))), cams, resolution=32)
            diffs.append(np.abs(got - image_to_uint8(ref["image"][0]).astype(int)).mean())
    return diffs


def test_scripted_screenshot_of_a_class(display, tmp_path):
    """--class K shows class K of a class-conditional model (the render core makes with that label),
    also when the checkpoint suggests another class."""
    diffs = _class_shown(display, tmp_path, {"viewer_class": 1}, ["--class", "2"])
    assert diffs[2] < 0.5 and min(diffs[0], diffs[1]) > 2 * diffs[2] + 1, diffs


def test_without_class_the_checkpoints_suggested_class_is_shown(display, tmp_path):
    """No --class and no session: the class the bundle suggests (core.bundle --viewer-class)."""
    diffs = _class_shown(display, tmp_path, {"viewer_class": 1}, [])
    assert diffs[1] < 0.5 and min(diffs[0], diffs[2]) > 2 * diffs[1] + 1, diffs


def test_scripted_bad_checkpoint_exits_2(display, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = _run([str(bad), "--screenshot", str(tmp_path / "x.png")], gui_env(display, tmp_path / "config"))
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_display_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, DISPLAY=":239", EPIGRAF_STUDIO_CONFIG_DIR=str(tmp_path))
    env.pop("WAYLAND_DISPLAY", None)
    proc = _run(["random:demo"], env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to the X display ':239'"), proc.stderr


def test_dropped_files_dispatch(tmp_path):
    from types import SimpleNamespace

    from viewer.dragdrop import dispatch
    from viewer.state import ViewerState

    opened = []
    app = SimpleNamespace(state=ViewerState(), ui_text={}, open_model=opened.append)
    (tmp_path / "w.npy").write_bytes(b"")
    assert "latent" in dispatch(app, [str(tmp_path / "w.npy")]) and app.state.latent.w_path.endswith("w.npy")
    assert "opening" in dispatch(app, [str(tmp_path / "notes.txt"), str(tmp_path)]) and opened == [str(tmp_path)]
    assert "ignored" in dispatch(app, [str(tmp_path / "notes.txt")])


def test_scripted_screenshot_of_an_official_snapshot(display, tmp_path):
    """An official EpiGRAF .pkl (pose-conditioned, with the background MLP) opens like any checkpoint,
    and the viewer shows core's render of it, background included."""
    pkl = ROOT / "tests" / "fixtures" / "snapshot_ffhq_bg_tiny.pkl"
    shot, win = tmp_path / "shot.png", tmp_path / "window.png"
    proc = _run([str(pkl), "--screenshot", str(shot), "--window-screenshot", str(win), "--seed", "7",
                 "--camera", "0.3,1.5", "--res", "32", "--size", "1100x700"], gui_env(display, tmp_path / "config"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    G, info = load_generator(str(pkl))
    assert info["meta"]["source_note"] == "official EpiGRAF snapshot, converted on load"
    c = G.cfg.camera
    cams = camlib.from_angles(0.3, 1.5, c.radius, c.fov_deg, cfg=c)
    with torch.no_grad():
        w = G.mapping(z_from_seed(7, G.cfg.generator.z_dim))  # no pose: the snapshot's mean camera pose
        ref = G.render(G.planes(w), cams, resolution=32, w=w)
        fg = G.render(G.planes(w), cams, resolution=32, show_background=False)
    got = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    diff = np.abs(got - image_to_uint8(ref["image"][0]).astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 2, (diff.mean(), diff.max())
    assert np.abs(got - image_to_uint8(fg["image"][0]).astype(int)).mean() > 2  # the background is there
