"""Live training statistics: an incremental tail of RUN/stats.jsonl, as series for ImPlot, and progress.

`StatsTail.poll()` reads only the bytes appended since the last call; a last line without its
newline (the trainer is writing it) waits for the next call; a line that is not JSON is counted
and skipped; a file that shrank or was replaced is read again from the start. Each numeric key
becomes a series of (kimg, value) points (`metric.*` keys only at the ticks that have them).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.training.stats import format_eta

LOSS_KEYS = ("loss_G", "loss_D", "r1_penalty")
G_TERM_KEYS = ("recon_l1", "rgb_excess", "outside_density")  # G's optional terms (train.*_weight), when on
SKIP_KEYS = ("timestamp", "kimg", "tick", "sec_per_kimg", "sec_per_tick", "nan_skipped")


@dataclass
class Series:
    xs: list[float] = field(default_factory=list)  # kimg
    ys: list[float] = field(default_factory=list)


class StatsTail:
    """Follows one stats.jsonl file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""
        self._ident: tuple[int, int] | None = None  # (device, inode) of the file being followed
        self.records: list[dict] = []
        self.series: dict[str, Series] = {}
        self.bad_lines = 0

    def reset(self) -> None:
        self.offset, self._partial, self.records, self.series, self.bad_lines = 0, b"", [], {}, 0

    def poll(self) -> int:
        """Read what was appended; returns the number of new records."""
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        ident = (st.st_dev, st.st_ino)
        if self._ident is not None and (ident != self._ident or st.st_size < self.offset):
            self.reset()  # replaced or truncated: start over
        self._ident = ident
        if st.st_size == self.offset:
            return 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(st.st_size - self.offset)
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended with a newline
        new = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError
            except ValueError:
                self.bad_lines += 1
                continue
            self._add(rec)
            new += 1
        return new

    def _add(self, rec: dict) -> None:
        self.records.append(rec)
        x = rec.get("kimg")
        if not isinstance(x, (int, float)):
            return
        for k, v in rec.items():
            if k in SKIP_KEYS or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            s = self.series.setdefault(k, Series())
            s.xs.append(float(x))
            s.ys.append(float(v))

    @property
    def last(self) -> dict | None:
        return self.records[-1] if self.records else None

    def metric_names(self) -> list[str]:
        return sorted(k for k in self.series if k.startswith("metric."))

    def loss_names(self) -> list[str]:
        return [k for k in LOSS_KEYS if k in self.series]

    def g_term_names(self) -> list[str]:
        return [k for k in G_TERM_KEYS if k in self.series]

    def names_with(self, prefix: str, suffixes: tuple[str, ...] = ("",)) -> list[str]:
        """Series whose keys start with `prefix` and end with one of `suffixes` (3DGP's camera/, kd/, depth/)."""
        return sorted(k for k in self.series if k.startswith(prefix) and k.endswith(suffixes))

    def camera_histogram(self) -> dict | None:
        """The newest 'camera_hist' record (3DGP: counts of the learned cameras per parameter), or None."""
        for rec in reversed(self.records):
            h = rec.get("camera_hist")
            if isinstance(h, dict) and h:
                return {"kimg": rec.get("kimg"), **h}
        return None


@dataclass
class Progress:
    """Where a run stands: kimg done of total, speed, ETA."""

    kimg: float
    total_kimg: float
    sec_per_kimg: float | None

    @property
    def fraction(self) -> float:
        return min(max(self.kimg / self.total_kimg, 0.0), 1.0) if self.total_kimg > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.sec_per_kimg is None:
            return None
        return max(self.total_kimg - self.kimg, 0.0) * self.sec_per_kimg

    def text(self) -> str:
        speed = f"{self.sec_per_kimg:.1f} sec/kimg" if self.sec_per_kimg is not None else "- sec/kimg"
        eta = format_eta(self.eta_s) if self.eta_s is not None else "-"
        return f"kimg {self.kimg:.3f} / {self.total_kimg:g}  |  {speed}  |  ETA {eta}"


def progress(tail: StatsTail, total_kimg: float, window: int = 5) -> Progress:
    """Progress from the records so far; sec/kimg is the mean of the last `window` ticks (first tick
    excluded when others exist: it includes start-up)."""
    recs = [r for r in tail.records if isinstance(r.get("sec_per_kimg"), (int, float))]
    kimg = float(tail.last.get("kimg", 0.0)) if tail.last else 0.0
    if len(recs) > 1:
        recs = recs[1:]
    speed = sum(r["sec_per_kimg"] for r in recs[-window:]) / len(recs[-window:]) if recs else None
    return Progress(kimg, float(total_kimg), speed)


def run_total_kimg(run_dir: str | Path) -> float | None:
    """train.kimg from the run folder's config.json (None before the trainer wrote it)."""
    try:
        return float(json.loads((Path(run_dir) / "config.json").read_text())["train"]["kimg"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
