"""Training statistics: per-tick means, stats.jsonl, TensorBoard events and the progress line."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from ..fileio import atomic_write_text


class StatsCollector:
    """Accumulates scalar values between ticks."""

    def __init__(self):
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self._sums[k] += float(v)
            self._counts[k] += 1

    def means(self) -> dict[str, float]:
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums.clear()
        self._counts.clear()
        return out


def drop_rows_after(path: Path, kimg: float) -> int:
    """Remove the rows of stats.jsonl past `kimg` (ticks after the snapshot a run resumes from, which
    the run is about to log again) and a torn last line (a kill during a write); returns how many."""
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            if float(row.get("kimg", 0.0)) <= kimg + 1e-9:
                keep.append(line)
                continue
        except (ValueError, TypeError, AttributeError):
            pass
        dropped += 1
    if dropped:
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))
        print(f"note: {dropped} row(s) of {path.name} past {kimg:g} kimg (or torn) dropped: the run continues "
              f"from {kimg:g} kimg")
    return dropped


class StatsWriter:
    """Appends one JSON line per tick to stats.jsonl and mirrors its scalars and learned-camera histograms
    ('camera_hist') to TensorBoard if available."""

    def __init__(self, run_dir: Path, start_kimg: float = 0.0):
        self.path = run_dir / "stats.jsonl"
        drop_rows_after(self.path, start_kimg)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional at run time; stats.jsonl is always written
            self.tb = None

    def write(self, record: dict) -> None:
        record = {"timestamp": time.time(), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        if self.tb is not None:
            step = int(round(record.get("kimg", 0) * 1000))
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("timestamp", "kimg"):
                    self.tb.add_scalar(k.replace(".", "/"), v, step)
            for name, hist in (record.get("camera_hist") or {}).items():
                if isinstance(hist, dict) and "counts" in hist:
                    self._add_histogram(f"camera_hist/{name}", hist["range"], hist["counts"], step)
            self.tb.flush()

    def _add_histogram(self, tag: str, value_range: list[float], counts: list[int], step: int) -> None:
        """One binned histogram (equal bins over value_range) as a TensorBoard histogram; the moments
        are those of the bin centres, which is all a binned record keeps."""
        num = sum(counts)
        if num == 0:  # nothing in range: TensorBoard has no empty histogram
            return
        lo, hi = float(value_range[0]), float(value_range[1])
        bins = len(counts)
        width = (hi - lo) / bins
        centres = [lo + (i + 0.5) * width for i in range(bins)]
        self.tb.add_histogram_raw(
            tag, min=lo, max=hi, num=num,
            sum=sum(c * x for c, x in zip(counts, centres)),
            sum_squares=sum(c * x * x for c, x in zip(counts, centres)),
            bucket_limits=[lo + (i + 1) * width for i in range(bins)], bucket_counts=list(counts),
            global_step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def format_eta(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def progress_line(tick: int, kimg: float, total_kimg: float, sec_per_kimg: float, means: dict[str, float]) -> str:
    eta = format_eta((total_kimg - kimg) * sec_per_kimg)
    parts = [f"tick {tick:<4d}", f"kimg {kimg:8.2f}/{total_kimg:g}", f"sec/kimg {sec_per_kimg:7.2f}", f"ETA {eta}"]
    for key in ("loss_G", "loss_D", "r1_penalty", "augment_p", "D_real_sign", "recon_l1"):
        if key in means:
            parts.append(f"{key} {means[key]:.3f}")
    return "  ".join(parts)
