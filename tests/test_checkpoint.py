"""Checkpoints: bit-exact round trip, safe loading, one-line refusals, atomic writes."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import cameras as camlib
from core.checkpoint import FORMAT, atomic_torch_save, build_generator, load_checkpoint, load_generator, save_checkpoint
from core.errors import UserError
from core.fileio import atomic_write_text
from tests.conftest import tiny_config


@pytest.fixture
def saved(tmp_path):
    cfg = tiny_config()
    G = build_generator(cfg, seed=5)
    path = tmp_path / "network-snapshot-000010.pt"
    save_checkpoint(path, cfg, G, meta={"kimg": 10})
    return cfg, G, path


def test_round_trip_is_bit_exact(saved):
    cfg, G, path = saved
    G2, info = load_generator(str(path))
    assert info["meta"] == {"kimg": 10} and G2.cfg == cfg
    s1, s2 = G.state_dict(), G2.state_dict()
    assert s1.keys() == s2.keys()
    for k in s1:
        assert s1[k].dtype == s2[k].dtype and torch.equal(s1[k], s2[k]), k
    with torch.no_grad():
        z = torch.randn(1, cfg.generator.z_dim)
        a = G.eval()(z, camlib.from_config(cfg.camera))["image"]
        b = G2(z, camlib.from_config(cfg.camera))["image"]
    assert torch.equal(a, b)
    # a plain torch.load with weights_only works too (no code of ours needed)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and all(t.device.type == "cpu" for t in raw["G_ema"].values())


def test_run_folder_resolves_to_the_newest_snapshot(saved, tmp_path):
    cfg, G, path = saved
    newer = tmp_path / "network-snapshot-000020.pt"
    save_checkpoint(newer, cfg, G, meta={"kimg": 20})
    _, info = load_generator(str(tmp_path))
    assert info["meta"]["kimg"] == 20


def _refused(path, match):
    with pytest.raises(UserError, match=match) as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value)


def test_truncated_flipped_garbage_and_missing_files_are_refused(saved, tmp_path):
    _, _, path = saved
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "trunc.pt", "corrupt, truncated")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the tensor data, which the zip container does not check
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    _refused(tmp_path / "flip.pt", "integrity check")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    _refused(tmp_path / "junk.pt", "corrupt, truncated")
    _refused(tmp_path / "missing.pt", "no checkpoint at")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": FORMAT, "version": 1, "x": _Payload(marker)}, tmp_path / "evil.pt")
    _refused(tmp_path / "evil.pt", "objects other than tensors")
    assert not marker.exists()


def test_foreign_and_future_files_are_refused(tmp_path):
    torch.save({"state": torch.zeros(2)}, tmp_path / "other.pt")
    _refused(tmp_path / "other.pt", "not an EpiGRAF Studio checkpoint")
    torch.save({"format": FORMAT, "version": 99, "config": {}, "G_ema": {}}, tmp_path / "future.pt")
    _refused(tmp_path / "future.pt", "version 99")


def test_a_failed_write_keeps_the_previous_file(saved):
    _, _, path = saved
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        atomic_torch_save({"bad": lambda: 0}, path)  # lambdas cannot be pickled
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_random_preset_is_reproducible():
    a, _ = load_generator("random:demo", seed=7)
    b, _ = load_generator("random:demo", seed=7)
    c, _ = load_generator("random:demo", seed=8)
    key = "synthesis.blocks.3.conv1.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])


def test_cli_prints_one_line_and_exits_2(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    r = subprocess.run([sys.executable, "-m", "core.generate", "--ckpt", str(bad), "--outdir", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    # a new file: 0o666 less the umask of the writing process (umask 027 -> 0o640)
    code = ("import sys; from core.fileio import atomic_write_text; atomic_write_text(sys.argv[1], 'x')")
    new = tmp_path / "new.txt"
    subprocess.run(["sh", "-c", 'umask 027 && exec "$0" -c "$1" "$2"', sys.executable, code, str(new)],
                   check=True, cwd=Path(__file__).resolve().parents[1])
    assert new.stat().st_mode & 0o777 == 0o640
    # a replaced file keeps its own permissions
    old = tmp_path / "old.txt"
    old.write_text("a")
    old.chmod(0o604)
    atomic_write_text(old, "b")
    assert old.read_text() == "b" and old.stat().st_mode & 0o777 == 0o604
