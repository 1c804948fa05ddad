"""Training runs as separate processes: launch detached, find again by run folder, stop cleanly.

A run is launched with `start_new_session=True` (its own session and process group: closing the
viewer, or a Ctrl-C in the viewer's terminal, does not reach it), its stdout and stderr appended to
`RUN/train.log`, and its pid written to `RUN/train.pid.json` together with the process start time
(from /proc, so a recycled pid is never mistaken for the run). Any viewer can then re-attach by the
run folder and ask whether the run is alive. (The record itself, which a run started by hand writes
too, is core/training/run_record.py.)

Stopping sends SIGTERM to the trainer processes themselves (`python -m core.train`; under torchrun
its worker processes, not the launcher, which would kill the workers' process groups and their data
loaders), which makes core.train write a snapshot and exit 0. After `timeout_s` whatever is left of
the process tree is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from core.training.run_record import (
    RunProcess,
    cmdline,
    is_alive,
    is_torchrun,
    read_pid_file,
    record_alive,
    start_ticks,
    stat_fields,
    write_pid_file,
)

__all__ = ["RunProcess", "alive", "cmdline", "descendants", "is_alive", "kill_tree", "launch", "read_pid_file",
           "request_stop", "stop", "trainer_pids", "write_pid_file"]

LOG_FILE = "train.log"
REPO_ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    """Direct children of `pid` (scanning /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            f = stat_fields(int(d.name))
            if f is not None and int(f[1]) == pid:
                out.append(int(d.name))
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def trainer_pids(pid: int) -> list[int]:
    """The `core.train` processes of a launch: the process itself, or torchrun's workers."""
    if is_torchrun(cmdline(pid)):
        workers = [c for c in descendants(pid) if "core.train" in cmdline(c) and "torch.distributed.run" not in
                   cmdline(c)]
        return workers or [pid]
    return [pid]


def launch(cmd: list[str], run_dir: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, RunProcess]:
    """Start `cmd` detached (own session), output appended to RUN/train.log; writes RUN/train.pid.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH", "")) if p)
    with open(run_dir / LOG_FILE, "ab") as log:
        log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} launched by the viewer: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=full_env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    info = RunProcess(proc.pid, start_ticks(proc.pid) or 0, list(cmd), time.time())
    write_pid_file(run_dir, info)
    return proc, info


def alive(info: RunProcess, proc: subprocess.Popen | None = None) -> bool:
    """Whether the run still runs; `proc` (when this viewer launched it) is reaped once it ended, so
    that its returncode is set whenever this returns False."""
    if proc is not None and proc.poll() is not None:
        return False
    if record_alive(info):
        return True
    if proc is not None:  # a zombie: exited, not yet reaped
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    return False


def request_stop(info: RunProcess) -> list[int]:
    """SIGTERM to the trainer processes (snapshot, exit 0); returns the pids signalled."""
    pids = [p for p in trainer_pids(info.pid) if is_alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return pids


def kill_tree(info: RunProcess) -> None:
    """SIGKILL the launched process, its process group and every descendant still alive."""
    if not record_alive(info):
        return
    pids = descendants(info.pid) + [info.pid]
    try:
        os.killpg(info.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(info: RunProcess, proc: subprocess.Popen | None = None, timeout_s: float = 300.0,
         poll_s: float = 0.2) -> str:
    """Stop a run: SIGTERM, wait up to timeout_s for it to exit, then SIGKILL. Returns what happened."""
    if not alive(info, proc):
        return "not running"
    request_stop(info)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if not alive(info, proc):
            return "stopped"
        time.sleep(poll_s)
    kill_tree(info)
    if proc is not None:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    return f"killed after {timeout_s:.0f} s"
