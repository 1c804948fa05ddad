"""Folder listing for the in-app "Open checkpoint" dialog (pure Python: no imgui, no display).

`list_dir(path, show_all)` returns the entries the dialog shows: sub-folders first, then the files
the viewer can open (.pt checkpoints, .pkl, .npy latents), each sorted by name without regard to
case; dot-files and other files only with `show_all`. A run folder is a folder holding
network-snapshot-*.pt files (opened at its newest snapshot by core's run-folder logic).
Problems (a missing or unreadable folder) raise `UserError` with a one-line message for the window.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.checkpoint import SNAPSHOT_GLOB
from core.errors import UserError

OPENABLE_SUFFIXES = (".pt", ".pkl", ".npy")
_SNAP_PREFIX, _SNAP_SUFFIX = SNAPSHOT_GLOB.split("*")


@dataclass(frozen=True)
class Entry:
    """One row of the dialog: a sub-folder or a file."""

    name: str
    path: str
    is_dir: bool
    size: int = 0  # bytes (0 for folders)
    mtime: float = 0.0  # seconds since the epoch (0 when unknown)
    is_run: bool = False  # a folder holding network-snapshot-*.pt files

    @property
    def openable(self) -> bool:
        """A file the viewer can open (a checkpoint or a latent)."""
        return not self.is_dir and self.name.lower().endswith(OPENABLE_SUFFIXES)


def _is_snapshot(name: str) -> bool:
    return name.startswith(_SNAP_PREFIX) and name.endswith(_SNAP_SUFFIX)


def is_run_folder(path: str | Path) -> bool:
    """True when `path` is a folder holding at least one network-snapshot-*.pt file."""
    try:
        with os.scandir(Path(path).expanduser()) as it:
            return any(_is_snapshot(e.name) and e.is_file() for e in it)
    except OSError:
        return False


def parent(path: str | Path) -> str:
    """The folder above `path` (the root stays the root)."""
    p = Path(path).expanduser().absolute()
    return str(p.parent)


def normalise(path: str | Path) -> str:
    """An absolute folder path from user text: quotes and spaces stripped, ~ expanded, '..' resolved."""
    text = str(path).strip().strip("'\"") or "."
    return os.path.normpath(str(Path(text).expanduser().absolute()))


def list_dir(path: str | Path, show_all: bool = False) -> list[Entry]:
    """The entries of folder `path`: folders first, then files, each by name (case-insensitive).

    Without `show_all`, names starting with '.' and files that are not .pt / .pkl / .npy are left out.
    Raises UserError when the folder does not exist, is not a folder or cannot be read.
    """
    d = Path(normalise(path))
    if not d.exists():
        raise UserError(f"'{d}' does not exist")
    if not d.is_dir():
        raise UserError(f"'{d}' is not a folder")
    try:
        with os.scandir(d) as it:
            raw = list(it)
    except OSError as e:
        raise UserError(f"cannot read '{d}': {e.strerror or type(e).__name__}") from None
    entries = []
    for e in raw:
        if not show_all and e.name.startswith("."):
            continue
        try:
            is_dir = e.is_dir()
            st = e.stat()
        except OSError:  # a broken link or a file that vanished: show it only with show_all
            if show_all:
                entries.append(Entry(e.name, e.path, False))
            continue
        if is_dir:
            entries.append(Entry(e.name, e.path, True, 0, st.st_mtime, is_run_folder(e.path)))
        elif show_all or e.name.lower().endswith(OPENABLE_SUFFIXES):
            entries.append(Entry(e.name, e.path, False, st.st_size, st.st_mtime))
    entries.sort(key=lambda x: (not x.is_dir, x.name.lower(), x.name))
    return entries


def start_folder(model_spec: str, last_browse: str = "", cwd: str | None = None) -> str:
    """Where the dialog opens: the current model's folder, else the last browsed folder, else `cwd`."""
    candidates = []
    spec = model_spec.strip()
    if spec and not spec.startswith("random:"):
        p = Path(spec).expanduser()
        candidates.append(p if p.is_dir() else p.parent)
    if last_browse:
        candidates.append(Path(last_browse).expanduser())
    for c in candidates:
        try:
            if c.is_dir():
                return normalise(c)
        except OSError:
            continue
    return normalise(cwd or os.getcwd())


def format_size(n: int) -> str:
    """A short human-readable size: 512 B, 3.4 KB, 12.0 MB, 1.5 GB."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # unreachable; keeps type checkers happy


def format_mtime(t: float) -> str:
    """A local date and time, 'YYYY-MM-DD HH:MM' ('' when unknown)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t > 0 else ""
