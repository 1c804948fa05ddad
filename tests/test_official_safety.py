"""Opening a pickle never runs code from it: refused globals, never-executed module source, bad files."""

import os
import pickle
import subprocess
from pathlib import Path

import pytest

from core.checkpoint import load_checkpoint, load_generator
from core.errors import UserError

FIX = Path(__file__).parent / "fixtures"


class _Call:
    """Pickles as a call of `fn(*args)`: what a malicious snapshot would do."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _write(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps({"G_ema": obj, "G": None}, protocol=4))
    return path


def _marker_command(marker: Path) -> str:
    return f"touch {marker}"


@pytest.mark.parametrize("case", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "importlib.import_module", "builtins.getattr"])
def test_code_calling_pickles_are_refused_and_nothing_runs(tmp_path, case):
    marker = tmp_path / "ran"
    if case == "os.system":
        obj = _Call(os.system, _marker_command(marker))
    elif case == "builtins.eval":
        obj = _Call(eval, f"open({str(marker)!r}, 'w')")
    elif case == "builtins.exec":
        obj = _Call(exec, f"open({str(marker)!r}, 'w')")
    elif case == "subprocess.Popen":
        obj = _Call(subprocess.Popen, ["touch", str(marker)])
    elif case == "importlib.import_module":
        obj = _Call(__import__("importlib").import_module, "antigravity")
    else:
        obj = _Call(getattr, "text", "upper")  # the first step of reaching any attribute
    path = _write(tmp_path / "network-snapshot-000000.pkl", obj)
    with pytest.raises(UserError) as err:
        load_generator(str(path))
    msg = str(err.value)
    assert "refused global" in msg and "\n" not in msg
    assert case.split(".")[-1] in msg
    assert not marker.exists()


def _persistent_pickle(meta: dict) -> bytes:
    """A protocol-2 pickle of {'G_ema': _reconstruct_persistent_obj(meta)}, as official snapshots store modules."""
    body = pickle.dumps(meta, protocol=2)[2:-1]  # the dict's opcodes, without header and STOP
    return (b"\x80\x02}X\x05\x00\x00\x00G_ema"
            + b"csrc.torch_utils.persistence\n_reconstruct_persistent_obj\n" + body + b"\x85Rs.")


def test_embedded_module_source_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    src = f"open({str(marker)!r}, 'w').write('executed')\nclass Generator:\n    pass\n"
    meta = {"type": "class", "version": 6, "module_src": src, "class_name": "Generator",
            "state": {"_modules": {}, "_parameters": {}, "_buffers": {}}}
    path = tmp_path / "snap.pkl"
    path.write_bytes(_persistent_pickle(meta))
    with pytest.raises(UserError) as err:
        load_generator(str(path))
    assert "not an official EpiGRAF snapshot" in str(err.value)
    assert not marker.exists()


def test_truncated_snapshot_is_one_clear_line(tmp_path):
    data = (FIX / "snapshot_megascans_tiny.pkl").read_bytes()
    path = tmp_path / "network-snapshot-000004.pkl"
    for cut in (len(data) // 2, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(UserError) as err:
            load_checkpoint(path)
        msg = str(err.value)
        assert "corrupt or truncated" in msg and "\n" not in msg, msg


def test_cuda_tagged_storages_load_on_a_cpu(tmp_path):
    """The fixtures' storages are tagged 'cuda:0'; without a GPU they still load (onto the CPU)."""
    data = load_checkpoint(FIX / "snapshot_megascans_tiny.pkl")
    assert all(v.device.type == "cpu" for v in data["G_ema"].values())
    assert b"cuda:0" in (FIX / "snapshot_megascans_tiny.pkl").read_bytes()


def test_a_plain_unpickler_would_have_needed_the_official_code():
    """The snapshot's globals name the official package: a plain pickle.load cannot even start."""
    with open(FIX / "snapshot_megascans_tiny.pkl", "rb") as f, pytest.raises(ModuleNotFoundError):
        pickle.load(f)
