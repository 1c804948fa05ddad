"""Which process trains into a run folder: `RUN/train.pid.json`.

The record names the top process of the run (`python -m core.train`, or the torchrun launcher of its
workers) with its start time from /proc, so that a recycled pid is never mistaken for the run. The
viewer writes it when it launches a run; a run started by hand writes it itself at start (the main
process), so the viewer can attach to it, see that it is alive, and stop it. A second run started
into a folder that a live run holds is refused, before it touches anything there.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_write_text

PID_FILE = "train.pid.json"
LOCK_FILE = ".train.lock"
_held_locks: dict[str, int] = {}  # run folder -> the descriptor holding its lock (for the process's life)


@dataclass
class RunProcess:
    """What the record holds about the run's top process."""

    pid: int
    start_ticks: int  # /proc/PID/stat field 22: the process start time (clock ticks since boot)
    cmd: list[str]
    started_at: float  # wall-clock time.time() of the launch
    returncode: int | None = None  # filled in by the viewer that reaped the process, when it did


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat split after the command name (field 3, the state, first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    f = stat_fields(pid)
    return int(f[19]) if f else None


def parent(pid: int) -> int | None:
    f = stat_fields(pid)
    return int(f[1]) if f else None


def is_alive(pid: int, ticks: int | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, when given, started at `ticks` (not a recycled pid)."""
    f = stat_fields(pid)
    if f is None or f[0] in ("Z", "X"):
        return False
    return ticks is None or int(f[19]) == ticks


def record_alive(info: RunProcess) -> bool:
    """Whether the process a record names still runs (and is that process, not a recycled pid)."""
    return is_alive(info.pid, info.start_ticks or None)


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def is_torchrun(cmd: list[str]) -> bool:
    return "torch.distributed.run" in cmd or any(a.endswith("torchrun") for a in cmd[:2])


def write_pid_file(run_dir: Path, info: RunProcess) -> None:
    atomic_write_text(Path(run_dir) / PID_FILE, json.dumps(asdict(info), indent=1))


def read_pid_file(run_dir: Path) -> RunProcess | None:
    """The run's record, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(run_dir) / PID_FILE).read_text())
        return RunProcess(int(data["pid"]), int(data["start_ticks"]), list(data["cmd"]), float(data["started_at"]),
                          data.get("returncode"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def own_lineage() -> set[int]:
    """This process and its ancestors."""
    out, pid = set(), os.getpid()
    while pid and pid not in out:
        out.add(pid)
        pid = parent(pid) or 0
    return out


def check_run_folder_free(run_dir: Path) -> None:
    """Refuse to train into a folder whose record names a live process that is not this one or one of
    its launchers (the viewer's record of this very run, or torchrun's)."""
    info = read_pid_file(run_dir)
    if info is None or not record_alive(info) or info.pid in own_lineage():
        return
    raise UserError(f"another run (pid {info.pid}) is training into '{run_dir}': stop it first (the viewer's "
                    f"Attach and Stop, or kill -TERM {info.pid}), or choose another --outdir")


def claim_run_folder(run_dir: Path) -> None:
    """Take the folder's exclusive lock (flock on `.train.lock`) for the life of this process, so that of
    two runs started into one folder at the same moment only one trains; the other gets one line. The
    kernel drops the lock when the process ends, however it ends. Then remove what a killed run left:
    temp files of interrupted atomic writes (`.NAME.*.tmp`)."""
    key = str(Path(run_dir).resolve())
    if key in _held_locks:
        return
    fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"another run is training into '{run_dir}' (it holds {LOCK_FILE}): stop it first, or "
                        f"choose another --outdir") from None
    _held_locks[key] = fd
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        print(f"note: removed {tmp.name}, left by an interrupted write")


def record_this_run(run_dir: Path) -> RunProcess:
    """Called by the main training process: keep a live record of this run (the viewer launched it),
    else write one naming the torchrun launcher when this process is one of its workers, or itself."""
    info = read_pid_file(run_dir)
    if info is not None and record_alive(info) and info.pid in own_lineage():
        return info
    pid = os.getpid()
    ppid = parent(pid)
    if ppid and is_torchrun(cmdline(ppid)):
        pid = ppid
    info = RunProcess(pid, start_ticks(pid) or 0, cmdline(pid), time.time())
    write_pid_file(run_dir, info)
    return info
