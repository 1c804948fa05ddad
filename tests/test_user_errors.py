"""Bad input a new user typed, and a full disk: one line before any work, nothing half-written."""

import errno
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from core import fileio
from core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def _one_line(r, text):
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("args, text", [
    (["--trunc", "nan"], "not a finite number"),
    (["--trunc", "inf"], "not a finite number"),
    (["--seeds", "-3"], "seed -3 is out of range"),
])
def test_generate_refuses_bad_numbers(tmp_path, args, text):
    r = _run("core.generate", "--ckpt", "random:demo", "--outdir", str(tmp_path / "out"), "--res", "8", *args)
    _one_line(r, text)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    r = _run("core.generate", "--ckpt", "random:demo", "--outdir", str(blocker / "out"), "--res", "8", "--seeds", "0")
    _one_line(r, str(blocker / "out"))


@pytest.mark.parametrize("args, text", [
    (["--kimg", "0"], "must be positive"),
    (["--kimg", "-1"], "must be positive"),
    (["--batch", "0"], "must be positive"),
    (["--set", "train.g_lr=nan"], "must be a finite number"),
])
def test_train_refuses_bad_settings_before_reading_data(tmp_path, args, text):
    r = _run("core.train", "--data", str(tmp_path / "no_such_data.zip"), "--outdir", str(tmp_path / "run"), *args)
    _one_line(r, text)
    assert not (tmp_path / "run").exists()


def _fake_usage(free):
    return lambda p: namedtuple("U", "total used free")(10**12, 10**12 - free, free)


def test_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    target = tmp_path / "network-snapshot-000001.000.pt"
    target.write_bytes(b"old")

    def no_space(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.shutil, "disk_usage", _fake_usage(3 * 2**20))
    with pytest.raises(UserError) as err:
        fileio.atomic_write(target, no_space)
    msg = str(err.value)
    assert str(target) in msg and "no space left" in msg and "3 MiB free" in msg and "\n" not in msg

    def torch_style(f):  # torch.save's zip writer reports a failed write as a RuntimeError
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file")

    with pytest.raises(UserError, match="no space left"):
        fileio.atomic_write(target, torch_style)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [target.name]  # no temp file

    monkeypatch.setattr(fileio.shutil, "disk_usage", _fake_usage(50 * 2**30))
    with pytest.raises(RuntimeError, match="PytorchStreamWriter"):  # with room on the disk it is not called full
        fileio.atomic_write(target, torch_style)


def test_extract_mesh_estimates_memory_first(tmp_path, monkeypatch):
    """--res 1024 went past 8 GB: the estimate (~20 bytes per voxel) is checked against the available
    memory before the model is loaded, with --ignore-memory to go on."""
    from core import runtime
    from core.extract_mesh import main
    monkeypatch.setattr(runtime, "available_memory", lambda: 4 * 2**30)
    with pytest.raises(UserError, match=r"a 1024\^3 mesh needs about 20.7 GiB .* 4.0 GiB is available.*--ignore-memory"):
        main(["--ckpt", "no/such/file.pt", "--res", "1024", "--outdir", str(tmp_path / "m")])
    with pytest.raises(UserError, match="no checkpoint at"):  # past the check: it goes on to the model
        main(["--ckpt", "no/such/file.pt", "--res", "1024", "--outdir", str(tmp_path / "m"), "--ignore-memory"])
    with pytest.raises(UserError, match="no checkpoint at"):  # 256^3 fits
        main(["--ckpt", "no/such/file.pt", "--res", "256", "--outdir", str(tmp_path / "m")])
