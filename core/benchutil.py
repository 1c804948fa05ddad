"""Helpers shared by the benchmarks (core.bench, core.bench_kernels): process memory, device and commit."""

from __future__ import annotations

import os
import platform
import subprocess
import threading
from datetime import date

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class RssPeak:
    """Samples the process RSS in a background thread; `peak` is the largest value seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> "RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()


def git_commit() -> str:
    """Short HEAD hash (+dirty), 'uncommitted tree of DATE' before the first commit, or 'unknown'."""
    try:
        dirty = "+dirty" if _git("status", "--porcelain") else ""
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    try:
        return _git("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.SubprocessError):
        return f"uncommitted tree of {date.today().isoformat()}"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    return f"{name}, {torch.get_num_threads()} threads (1-min load average at start {os.getloadavg()[0]:.2f})"
