"""One training run seen from the viewer: start / stop / resume / attach, and what it is doing now.

`TrainJob` wraps a run folder. `start` launches `python -m core.train` (torchrun for several
processes) through viewer/run_processes.py; `attach` finds a run started earlier (by this or
another viewer, or by hand with a pid file) and follows it; `stop` runs in a background thread
(SIGTERM, wait, SIGKILL after the timeout) so the GUI never blocks; `poll` is cheap enough for
every frame: it tails stats.jsonl, checks liveness and the newest snapshot at most every
`poll_s` seconds. Dataset jobs (`core.dataset_tool synthetic|render`) run the same way but are
not detached from the viewer's lifetime concerns: they are short, and only their log is kept.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from core.checkpoint import list_snapshots

from . import run_processes as rp
from .train_stats import Progress, StatsTail, progress, run_total_kimg

STATUSES = ("idle", "running", "stopping", "finished", "failed", "stopped")


def newest_snapshot(run_dir: Path) -> Path | None:
    """The run's newest snapshot of ours (the viewer's own runs write .pt), or None."""
    snaps = list_snapshots(run_dir, official=False)
    return snaps[0] if snaps else None


class TrainJob:
    """A run folder and the process training into it (if any)."""

    def __init__(self, run_dir: str | Path, poll_s: float = 0.5):
        self.run_dir = Path(run_dir).expanduser()
        self.poll_s = poll_s
        self.tail = StatsTail(self.run_dir / "stats.jsonl")
        self.proc: subprocess.Popen | None = None  # only when this viewer launched it
        self.info: rp.RunProcess | None = None
        self.status = "idle"
        self.message = ""
        self.snapshot: Path | None = None  # newest snapshot seen
        self.total_kimg: float | None = None
        self._last_poll = -1e9
        self._stop_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ actions

    def start(self, cmd: list[str]) -> None:
        """Launch `cmd` (a core.train command) into the run folder."""
        if self.running:
            raise RuntimeError(f"a run is already going in {self.run_dir}")
        self.proc, self.info = rp.launch(cmd, self.run_dir)
        self.status, self.message = "running", f"started pid {self.info.pid}"
        self._last_poll = -1e9

    def attach(self) -> str:
        """Follow the run in the folder: alive (from its pid file) or finished. Returns the status."""
        if not self.run_dir.is_dir():
            self.status, self.message = "failed", f"no run folder '{self.run_dir}'"
            return self.status
        self.info = rp.read_pid_file(self.run_dir)
        self.proc = None
        self.tail.reset()
        if self.info is not None and rp.alive(self.info):
            self.status, self.message = "running", f"attached to pid {self.info.pid}"
        elif newest_snapshot(self.run_dir) is not None or (self.run_dir / "stats.jsonl").exists():
            self.status, self.message = "finished", "not running; showing its stats"
        else:
            self.status, self.message = "failed", f"'{self.run_dir}' holds no run (no stats, snapshots or pid file)"
        self._last_poll = -1e9
        self.poll(force=True)
        return self.status

    def stop(self, timeout_s: float = 300.0) -> None:
        """Ask the run to snapshot and exit (in a background thread); SIGKILL after timeout_s."""
        if not self.running or self.info is None or self.status == "stopping":
            return
        self.status, self.message = "stopping", "SIGTERM sent: writing a snapshot ..."
        info, proc = self.info, self.proc

        def work() -> None:
            outcome = rp.stop(info, proc, timeout_s)
            code = proc.returncode if proc is not None else None
            if proc is not None and code is not None:
                info.returncode = code
                try:
                    rp.write_pid_file(self.run_dir, info)
                except OSError:
                    pass
            self.message = outcome + (f" (exit {code})" if code is not None else "")
            self.status = "stopped" if outcome == "stopped" and code in (0, None) else "failed"

        self._stop_thread = threading.Thread(target=work, name="train-stop", daemon=True)
        self._stop_thread.start()

    def wait_stopped(self, timeout: float | None = None) -> None:
        if self._stop_thread is not None:
            self._stop_thread.join(timeout)

    # ------------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        return self.status in ("running", "stopping")

    def poll(self, force: bool = False) -> bool:
        """Refresh stats, liveness and the newest snapshot (rate-limited); True when new stats arrived."""
        now = time.monotonic()
        if not force and now - self._last_poll < self.poll_s:
            return False
        self._last_poll = now
        new = self.tail.poll() > 0
        if self.total_kimg is None or new:
            self.total_kimg = run_total_kimg(self.run_dir) or self.total_kimg
        self.snapshot = newest_snapshot(self.run_dir) if self.run_dir.is_dir() else None
        if self.status == "running" and self.info is not None and not rp.alive(self.info, self.proc):
            code = self.proc.returncode if self.proc is not None else None
            if self.proc is not None:
                self.info.returncode = code
                try:
                    rp.write_pid_file(self.run_dir, self.info)
                except OSError:
                    pass
            self.status = "finished" if code in (0, None) else "failed"
            self.message = f"exited with status {code}" if code is not None else "the process ended"
            if code not in (0, None):
                self.message += f": see {self.run_dir / rp.LOG_FILE}"
            self.tail.poll()
        return new

    def progress(self) -> Progress | None:
        if self.total_kimg is None and not self.tail.records:
            return None
        return progress(self.tail, self.total_kimg or 0.0)

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of RUN/train.log."""
        path = self.run_dir / rp.LOG_FILE
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(size - max_bytes, 0))
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class ToolJob:
    """A short background command (the dataset tool): runs, then reports success or the log's end."""

    def __init__(self, args: list[str], log_path: Path):
        self.args, self.log_path = args, log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")
        env_pp = str(rp.REPO_ROOT)
        import os

        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (env_pp, os.environ.get("PYTHONPATH", "")) if p)}
        self.proc = subprocess.Popen([sys.executable, *args], cwd=str(rp.REPO_ROOT), env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def finished(self) -> bool:
        return self.proc.poll() is not None

    def result(self) -> tuple[bool, str] | None:
        """(ok, message) once finished, else None."""
        if self.proc.poll() is None:
            return None
        self._log.close()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        last = text[-1] if text else ""
        return self.proc.returncode == 0, last or f"exit status {self.proc.returncode}"

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
