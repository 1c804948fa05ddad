"""Atomic file writes: a temp file beside the target, fsync, then rename over it.

A crash or kill at any point leaves either the old file or the new one under the real name, never
a half-written one; a failed write leaves no temp file behind. The file gets the permissions a
plain `open(path, "w")` would give it: those of the file it replaces, or 0o666 less the umask for a
new one (a bare mkstemp file would be 0o600, unreadable to the rest of a team sharing a run folder).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import UserError

_UMASK = os.umask(0)  # read once at import, while no other thread can be creating files
os.umask(_UMASK)


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call write(f) on a binary temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, (OSError, RuntimeError)) and _disk_full(e, path):
            free = shutil.disk_usage(path.parent).free / 2**20
            raise UserError(f"cannot write '{path}': no space left on its disk ({free:.0f} MiB free); free some "
                            f"space (earlier files are intact) and resume") from None
        if isinstance(e, OSError):
            raise UserError(f"cannot write '{path}': {e.strerror or e}") from None
        raise


def _disk_full(e: BaseException, path: Path) -> bool:
    """Whether a failed write ran out of space (torch.save reports it as a RuntimeError)."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    try:
        return "writ" in str(e).lower() and shutil.disk_usage(path.parent).free < 64 * 2**20
    except OSError:
        return False


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
