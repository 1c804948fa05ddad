"""Open an official EpiGRAF or EG3D `network-snapshot-*.pkl` safely: restricted unpickling, then conversion."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import eg3d, epigraf
from .unpickle import restricted_load


def is_pickle(path: str | os.PathLike) -> bool:
    """Whether a file starts like a binary pickle (protocol 2+), i.e. an official snapshot candidate."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_snapshot(path: str | os.PathLike) -> Any:
    """The snapshot's contents with modules as inert records; every failure is one UserError line."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return restricted_load(f, what="snapshot")
    except pickle.UnpicklingError as e:
        msg = str(e)
        if msg.startswith("refused"):
            raise UserError(f"refused '{path}': {msg}; nothing from it was run (an official EpiGRAF snapshot "
                            f"names only tensors, numpy, omegaconf and its own modules)") from None
        raise UserError(f"'{path}' is corrupt or truncated ({msg[:160]}); use another snapshot") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, RuntimeError,
            MemoryError) as e:
        raise UserError(f"'{path}' is corrupt or truncated ({type(e).__name__}: {str(e)[:160]}); "
                        f"use another snapshot") from None


def load_official(path: str | os.PathLike, training_state: bool = True) -> tuple[dict, dict[str, Any], dict]:
    """(our config dict, state entries, meta) for an official EpiGRAF or EG3D snapshot file."""
    path = Path(path)
    snapshot = read_snapshot(path)
    if isinstance(snapshot, dict) and eg3d.is_eg3d(snapshot.get("G_ema")):
        config, entries, extra = eg3d.convert(snapshot, f"'{path}'", training_state=training_state)
        meta = {"source_kind": "official-eg3d", "source_note": eg3d.SOURCE, "converted_from": path.name, **extra}
        ts = snapshot.get("training_set_kwargs")
        if isinstance(ts, dict) and ts.get("path"):
            meta["dataset"] = Path(str(ts["path"])).stem
        if m := re.fullmatch(r"network-snapshot-(\d+)\.pkl", path.name):  # EG3D records its kimg only here
            meta["kimg"] = float(m.group(1))
            if "progress" in entries:
                entries["progress"].update(cur_nimg=int(m.group(1)) * 1000, tick_start_nimg=int(m.group(1)) * 1000)
        return config, entries, meta
    config, entries = epigraf.convert(snapshot, f"'{path}'", training_state=training_state)
    stats = snapshot.get("stats") if isinstance(snapshot, dict) else None
    nimg = stats.get("cur_nimg") if isinstance(stats, dict) else None
    ts = snapshot.get("training_set_kwargs") if isinstance(snapshot, dict) else None
    meta = {"source_kind": "official-epigraf", "source_note": epigraf.SOURCE, "converted_from": path.name}
    if nimg is not None:
        meta["kimg"] = round(float(nimg) / 1000, 3)
    if isinstance(ts, dict) and ts.get("path"):
        meta["dataset"] = Path(str(ts["path"])).stem
    return config, entries, meta
