"""`python -m core.generate` end to end on a random demo model."""

import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from core.errors import UserError
from core.generate import main


def test_images_grid_depth_and_orbit_video(tmp_path):
    out = tmp_path / "out"
    assert main(["--ckpt", "random:demo", "--seeds", "0-2", "--res", "32", "--outdir", str(out), "--grid",
                 "--depth", "--video", "orbit", "--frames", "4", "--device", "cpu"]) == 0
    imgs = [imageio.imread(out / f"seed{s:04d}.png") for s in range(3)]
    for im in imgs:
        assert im.shape == (32, 32, 3) and im.std() > 1.0  # not a constant picture
    assert not np.array_equal(imgs[0], imgs[1])  # different seeds, different samples
    assert imageio.imread(out / "grid.png").shape == (32, 96, 3)
    depth = imageio.imread(out / "seed0000_depth.png")
    assert depth.shape == (32, 32, 3) and depth.std() > 0.5
    frames = [f for f in imageio.get_reader(out / "orbit.mp4")]
    assert len(frames) == 4 and frames[0].shape == (32, 96, 3)
    assert np.abs(frames[0].astype(float) - frames[2].astype(float)).mean() > 1.0  # the camera moved


def test_interp_video_via_the_module_entry_point(tmp_path):
    out = tmp_path / "interp"
    r = subprocess.run([sys.executable, "-m", "core.generate", "--ckpt", "random:demo", "--seeds", "3,4",
                        "--res", "16", "--outdir", str(out), "--video", "interp", "--frames", "3", "--trunc", "0.7"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    frames = [f for f in imageio.get_reader(out / "interp.mp4")]
    assert len(frames) == 3
    first, last = (imageio.imread(out / f"seed{s:04d}.png").astype(float) for s in (3, 4))
    # the interpolation starts at seed 3 and ends at seed 4 (up to video compression)
    assert np.abs(frames[0] - first).mean() < np.abs(frames[0] - last).mean()
    assert np.abs(frames[-1] - last).mean() < np.abs(frames[-1] - first).mean()


def test_bad_arguments_give_one_line_errors(tmp_path):
    for args, msg in ((["--seeds", "a-b"], "cannot read seeds"), (["--class", "3"], "unconditional"),
                      (["--device", "tpu"], "unknown device")):
        r = subprocess.run([sys.executable, "-m", "core.generate", "--ckpt", "random:demo", "--outdir",
                            str(tmp_path / "x"), *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_class_label_by_index_or_name():
    from core.runtime import class_label
    names = ["bunny", "duck", "Mug"]
    assert class_label(0, None) is None
    assert class_label(3, 1).tolist() == [[0.0, 1.0, 0.0]]
    assert class_label(3, "2", batch=2).tolist() == [[0.0, 0.0, 1.0]] * 2
    assert class_label(3, "mug", names=names).tolist() == [[0.0, 0.0, 1.0]]  # any case
    assert class_label(3, "duck", names=names).tolist() == [[0.0, 1.0, 0.0]]
    for value, kw, msg in ((None, {}, "between 0 and 2"), (3, {}, "between 0 and 2"), ("-1", {}, "between 0 and 2"),
                           ("teddy", {"names": names}, r"unknown class 'teddy'.*\(bunny, duck, Mug\)"),
                           ("duck", {}, "unknown class 'duck'")):
        with pytest.raises(UserError, match=msg):
            class_label(3, value, **kw)
    with pytest.raises(UserError, match="unconditional: drop --class"):
        class_label(0, "duck", names=names)


def test_without_class_the_checkpoints_suggested_class_is_used(tmp_path, capsys):
    """The README's command on the bundled (class-conditional) model works without --class: the class
    the checkpoint suggests, said in one line; a model that suggests none still asks for --class."""
    from core.checkpoint import build_generator, save_checkpoint
    from tests.conftest import tiny_config

    cfg = tiny_config()
    cfg.generator.c_dim = 3
    for meta, ok in (({"viewer_class": 2, "class_names": ["a", "b", "cup"]}, True), ({}, False)):
        ckpt = tmp_path / f"cond{ok}.pt"
        save_checkpoint(ckpt, cfg, build_generator(cfg, seed=1), meta=meta)
        argv = ["--ckpt", str(ckpt), "--seeds", "0", "--res", "8", "--outdir", str(tmp_path / "out"), "--device", "cpu"]
        if ok:
            assert main(argv) == 0
            assert "class: 2 (cup), the one the checkpoint suggests" in capsys.readouterr().out
        else:
            with pytest.raises(UserError, match="pass --class"):
                main(argv)
