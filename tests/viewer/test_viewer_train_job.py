"""Training runs from the viewer without a window: the stats tail, and a real tiny core.train run
started, attached to, stopped with SIGTERM (snapshot intact) through viewer/train_job.py."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch

from core.checkpoint import load_checkpoint
from tests.tiny_train import TINY_TRAIN_OVERRIDES
from viewer import run_processes as rp
from viewer import train_form as tf
from viewer.train_job import TrainJob
from viewer.train_stats import StatsTail, progress

TINY_OVERRIDES = "\n".join(TINY_TRAIN_OVERRIDES)


def wait_for(cond, timeout: float, what: str, step: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_stats_tail_reads_increments_partial_lines_and_restarts(tmp_path):
    path = tmp_path / "stats.jsonl"
    tail = StatsTail(path)
    assert tail.poll() == 0 and tail.last is None  # no file yet
    r0 = {"kimg": 0.004, "tick": 0, "sec_per_kimg": 100.0, "loss_G": 0.7, "loss_D": 1.3}
    r1 = {"kimg": 0.008, "tick": 1, "sec_per_kimg": 40.0, "loss_G": 0.8, "loss_D": 1.2, "metric.kid1k": 0.25,
          "recon_l1": 0.2}
    r2 = {"kimg": 0.012, "tick": 2, "sec_per_kimg": 60.0, "loss_G": 0.9, "loss_D": float("nan")}
    line1 = json.dumps(r1)
    path.write_text(json.dumps(r0) + "\n" + line1[:17])  # the trainer is half-way through line 2
    assert tail.poll() == 1 and tail.series["loss_G"].ys == [0.7]
    with open(path, "a") as f:
        f.write(line1[17:] + "\nnot json\n" + json.dumps(r2).replace("NaN", "NaN") + "\n")
    assert tail.poll() == 2 and tail.bad_lines == 1
    assert tail.series["loss_G"].xs == [0.004, 0.008, 0.012] and tail.series["loss_G"].ys == [0.7, 0.8, 0.9]
    assert tail.series["loss_D"].ys == [1.3, 1.2]  # NaN left out of the plot
    assert tail.metric_names() == ["metric.kid1k"] and tail.series["metric.kid1k"].xs == [0.008]
    assert tail.g_term_names() == ["recon_l1"] and tail.loss_names() == ["loss_G", "loss_D"]
    assert "tick" not in tail.series and "sec_per_kimg" not in tail.series
    assert tail.poll() == 0
    p = progress(tail, total_kimg=0.112)
    assert p.kimg == 0.012 and p.sec_per_kimg == pytest.approx(50.0)  # first tick (start-up) left out
    assert p.fraction == pytest.approx(0.012 / 0.112) and p.eta_s == pytest.approx(0.1 * 50.0)
    path.write_text(json.dumps(r0) + "\n")  # a new run in the same file: shorter, read again
    assert tail.poll() == 1 and len(tail.records) == 1 and tail.series["loss_G"].ys == [0.7]


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('re' + 'ady', flush=True); "
            "time.sleep(120)")
    proc, info = rp.launch([sys.executable, "-c", code], tmp_path)
    assert rp.read_pid_file(tmp_path) == info and os.getpgid(info.pid) == info.pid  # own process group
    wait_for(lambda: "ready" in (tmp_path / rp.LOG_FILE).read_text(), 30, "the child to ignore SIGTERM")
    t0 = time.monotonic()
    assert rp.stop(info, proc, timeout_s=1.0, poll_s=0.05).startswith("killed")
    assert time.monotonic() - t0 < 15 and proc.returncode == -9 and not rp.is_alive(info.pid)
    assert rp.stop(info, proc) == "not running"
    assert not rp.alive(rp.RunProcess(info.pid, info.start_ticks + 1, [], 0.0))  # a recycled pid is not the run


def test_start_attach_stop_a_tiny_run_with_two_processes(dataset, tmp_path):
    """torchrun with two gloo CPU processes (the GUI test runs a single process): stopping signals
    both workers, which snapshot together and exit 0, and torchrun with them."""
    run = tmp_path / "run"
    argv = tf.build_argv(dataset, str(run), "demo", {**tf.preset_values("demo"), "train.kimg": 1000.0,
                                                     "train.batch": 4}, "cpu", 2, TINY_OVERRIDES)
    job = TrainJob(run, poll_s=0.0)
    job.start(tf.launch_command(argv, 2))
    assert job.status == "running" and rp.read_pid_file(run).pid == job.info.pid
    wait_for(lambda: job.poll() is not None and job.snapshot is not None and len(job.tail.records) >= 2
             or job.status != "running", 150, "a snapshot")
    assert job.status == "running", job.log_tail()
    workers = rp.trainer_pids(job.info.pid)
    assert len(workers) == 2 and job.info.pid not in workers
    assert all("core.train" in rp.cmdline(w) and "torch.distributed.run" not in rp.cmdline(w) for w in workers)
    # a second viewer attaches to the live run by its folder
    other = TrainJob(run, poll_s=0.0)
    assert other.attach() == "running" and other.info.pid == job.info.pid and other.tail.records
    assert other.total_kimg == 1000.0
    job.stop(timeout_s=120)
    assert job.status == "stopping"
    job.wait_stopped(150)
    assert job.status == "stopped", (job.message, job.log_tail())
    assert job.proc.returncode == 0 and not rp.is_alive(job.info.pid) and not any(map(rp.is_alive, workers))
    assert "stop requested" in job.log_tail()
    assert rp.read_pid_file(run).returncode == 0
    # the newest snapshot is intact and is the last tick in stats.jsonl
    job.poll(force=True)
    snaps = sorted(run.glob("network-snapshot-*.pt"))
    data = load_checkpoint(snaps[-1])
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert data["progress"]["cur_nimg"] == round(records[-1]["kimg"] * 1000) > 0
    assert all(torch.isfinite(t).all() for t in data["G_ema"].values()) and data["rng"]["world"] == 2
    # attach after the end: finished, the whole stats file parsed
    later = TrainJob(run)
    assert later.attach() == "finished" and later.snapshot == snaps[-1]
    assert [r["tick"] for r in later.tail.records] == [r["tick"] for r in records]
    assert later.tail.series["loss_G"].ys == [r["loss_G"] for r in records]
    # the other viewer notices the end too
    other.poll(force=True)
    assert other.status == "finished" and other.info.returncode is None  # not its child: no exit code
    # Resume (one process now): the run continues from its newest snapshot, ticks and kimg go on
    argv = tf.build_argv(dataset, str(run), "demo", {**tf.preset_values("demo"), "train.kimg": 1000.0,
                                                     "train.batch": 4}, "cpu", 1, TINY_OVERRIDES, resume=True)
    assert argv[-2:] == ["--resume", "auto"]
    again = TrainJob(run, poll_s=0.0)
    again.start(tf.launch_command(argv, 1))
    wait_for(lambda: again.poll() is not None and again.snapshot not in (None, snaps[-1]) or again.status != "running",
             150, "a snapshot after resuming")
    assert again.status == "running", again.log_tail()
    again.stop(timeout_s=120)
    again.wait_stopped(150)
    assert again.status == "stopped" and again.proc.returncode == 0, (again.message, again.log_tail())
    assert "resumed from" in again.log_tail()
    resumed = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert resumed[len(records)]["tick"] == records[-1]["tick"] + 1
    assert resumed[-1]["kimg"] > records[-1]["kimg"]
    newest = load_checkpoint(sorted(run.glob("network-snapshot-*.pt"))[-1])
    assert newest["progress"]["cur_nimg"] == round(resumed[-1]["kimg"] * 1000) > data["progress"]["cur_nimg"]


def test_a_run_started_by_hand_is_attached_stopped_and_guarded(dataset, tmp_path):
    """`python -m core.train` from a terminal records itself in RUN/train.pid.json: the viewer attaches
    to it as running and stops it (snapshot intact); while it lives, a second run into its folder is
    refused without touching anything; once it has ended, its record no longer holds the folder."""
    run = tmp_path / "run"
    base = [sys.executable, "-m", "core.train", "--data", dataset, "--outdir", str(run), "--preset", "demo",
            "--batch", "4", "--device", "cpu", *[f"--set={o}" for o in TINY_TRAIN_OVERRIDES]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*base, "--kimg", "1000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: (run / "stats.jsonl").exists() or proc.poll() is not None, 120, "the first tick")
        assert proc.poll() is None, proc.stderr.read()
        info = rp.read_pid_file(run)
        assert info.pid == proc.pid and "core.train" in info.cmd and rp.alive(info)
        job = TrainJob(run, poll_s=0.0)
        assert job.attach() == "running" and job.info.pid == proc.pid
        # a second run into the live run's folder: refused, the folder as it was
        before = {f.name for f in run.iterdir()}
        r = subprocess.run([*base, "--resume", "auto", "--max-steps", "1"], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and f"another run (pid {proc.pid})" in r.stderr, r.stderr
        assert "training demo" not in r.stdout and rp.read_pid_file(run) == info
        # only the live run's own outputs are new: its snapshots (or one being written atomically)
        new = {f.name for f in run.iterdir()} - before
        snapshot = re.compile(r"network-snapshot-[\d.]+\.pt|\.network-snapshot-[\d.]+\.pt\..+\.tmp")
        assert all(n in ("samples", "tensorboard") or snapshot.fullmatch(n) for n in new), new
        job.stop(timeout_s=120)
        job.wait_stopped(150)
        assert job.status == "stopped", job.message
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    snaps = sorted(run.glob("network-snapshot-*.pt"))
    assert snaps and load_checkpoint(snaps[-1])["progress"]["cur_nimg"] > 0
    # the dead run's record does not hold the folder: resuming by hand works and records itself
    resume = [*base[:base.index("--batch")], "--resume", "auto", "--max-steps", "1", "--device", "cpu",
              *[f"--set={o}" for o in TINY_TRAIN_OVERRIDES if o.startswith("train.")]]
    r = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert rp.read_pid_file(run).pid not in (proc.pid, info.pid)


def test_a_new_viewer_reattaches_to_the_run_in_its_session_folder(tmp_path):
    pytest.importorskip("imgui_bundle", reason="the panel module needs imgui-bundle")
    from types import SimpleNamespace

    from viewer.app import AppOptions
    from viewer.state import ViewerState
    from viewer.train_controller import TrainingController as TrainingUi

    state = ViewerState()
    state.train.outdir = str(tmp_path)
    assert TrainingUi(SimpleNamespace(state=state, options=AppOptions())).job is None  # nothing there: nothing followed
    proc, info = rp.launch([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path)
    try:
        u = TrainingUi(SimpleNamespace(state=state, options=AppOptions()))
        assert u.job is not None and u.job.status == "running" and u.job.info.pid == info.pid
        assert u.job.proc is None  # not this viewer's child: followed through the pid file
    finally:
        proc.kill()
        proc.wait(10)
    assert TrainingUi(SimpleNamespace(state=state, options=AppOptions())).job is None  # ended: not re-attached at start


def test_stats_tail_gives_the_3dgp_series_and_the_newest_camera_histogram(tmp_path):
    path = tmp_path / "stats.jsonl"
    recs = [{"kimg": 0.5, "camera/yaw_mean": 0.1, "camera/yaw_std": 0.5, "camera/emd_mult": 0.0, "kd/loss": 3.0,
             "camera_hist": {"n": 8, "bins": 2, "fov_deg": {"range": [10, 20], "counts": [8, 0]}}},
            {"kimg": 1.0, "camera/yaw_mean": 0.2, "camera/yaw_std": 0.4, "camera/emd_mult": 0.1, "kd/loss": 2.0,
             "camera_hist": {"n": 8, "bins": 2, "fov_deg": {"range": [10, 20], "counts": [3, 5]}}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    tail = StatsTail(path)
    assert tail.poll() == 2
    assert tail.names_with("camera/", ("_mean",)) == ["camera/yaw_mean"]
    assert tail.names_with("camera/", ("_std",)) == ["camera/yaw_std"]
    assert tail.names_with("kd/") == ["kd/loss"]
    assert tail.series["camera/emd_mult"].ys == [0.0, 0.1]
    h = tail.camera_histogram()
    assert h["kimg"] == 1.0 and h["fov_deg"]["counts"] == [3, 5]
