"""Everything a run needs to continue exactly: networks, optimisers, augmentation, counters, RNG.

A training snapshot is a regular checkpoint (core/checkpoint.py: weights-only, atomic, with the
config and G_ema) with these extra entries:
  G, D               state dicts
  opt_G, opt_D       optimiser state dicts
  augment            {"p": float, "ada": AdaController state} or {}
  progress           {"cur_nimg", "cur_tick", "batch_idx", "tick_start_nimg", "nan_skipped"}
  rng                {"world": N, "cpu": [ByteTensor per rank], "cuda": [ByteTensor per rank or None]}
  meta               {"kimg", "dataset", "preset", ...} for people and the viewer
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import ModelConfig
from ..errors import UserError
from . import distributed as distlib
from .conditioning import add_class_conditioning


@dataclass
class Progress:
    cur_nimg: int = 0
    cur_tick: int = 0
    batch_idx: int = 0
    tick_start_nimg: int = 0
    nan_skipped: int = 0


def snapshot_name(cur_nimg: int) -> str:
    return f"network-snapshot-{cur_nimg / 1000:010.3f}.pt"  # kimg, zero-padded: sorts by name


def rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def save_training_snapshot(run_dir: Path, cfg: ModelConfig, nets: dict, opts: dict, augment: dict,
                           progress: Progress, d: distlib.Dist, device: torch.device, meta: dict) -> Path | None:
    """Gather every process's RNG state and write the snapshot from rank 0; returns its path there."""
    states = distlib.gather_objects(rng_state(device), d)
    path = run_dir / snapshot_name(progress.cur_nimg)
    if d.main:
        save_checkpoint(path, cfg, nets["G_ema"], G=nets["G"], D=nets["D"],
                        opt_G=opts["G"].state_dict(), opt_D=opts["D"].state_dict(), augment=augment,
                        progress=asdict(progress),
                        rng={"world": d.world, "cpu": [s["cpu"] for s in states],
                             "cuda": [s["cuda"] for s in states]},
                        meta=meta)
    distlib.barrier(d)
    return path if d.main else None


def restore_training_snapshot(path: Path, nets: dict, opts: dict, d: distlib.Dist, device: torch.device,
                              label_init: float = 0.0) -> tuple[Progress, dict, bool]:
    """Load a snapshot into the networks and optimisers; returns (progress, augment state, exact).

    `exact` is False when the number of processes changed (the RNG streams then restart from
    their seeds; everything else continues). Into class-conditional networks, an unconditional
    snapshot is widened (conditioning.add_class_conditioning; G's label weights at `label_init`).
    """
    data = load_checkpoint(path)
    official = data.get("meta", {}).get("source_kind") == "official-epigraf"
    for key in ("G", "progress") if official else ("G", "D", "progress"):
        if key not in data:
            raise UserError(f"'{path}' is a viewer-only checkpoint (no '{key}'): it cannot resume training")
    c_dim, saved_c_dim = nets["G"].c_dim, data["config"]["generator"]["c_dim"]
    if saved_c_dim not in (0, c_dim):
        raise UserError(f"'{path}' has {saved_c_dim} class labels, the run {c_dim}: resume it on data with its labels")
    states = {k: data[k] for k in ("G", "D", "G_ema") if k in data}
    if saved_c_dim == 0 and c_dim > 0:  # adding class labels to an unconditional model
        init = {"G": label_init, "G_ema": label_init, "D": 0.0}
        states = {k: add_class_conditioning(v, nets[k].state_dict(), c_dim, k, init[k]) for k, v in states.items()}
    for k, v in states.items():
        nets[k].load_state_dict(v)
    # A bundle made with `python -m core.bundle --training-state` keeps the weights and counters
    # but not the optimiser moments or RNG streams: training continues from it, not exactly.
    warm = not all(k in data for k in ("opt_G", "opt_D", "rng"))
    if warm or saved_c_dim != c_dim:
        if d.main:
            why = (f"it was unconditional: {c_dim} class labels added, G's label weights at "
                   f"{label_init:g} x a fresh network's, D's at zero" if saved_c_dim != c_dim else
                   "an official EpiGRAF snapshot: its G and G_ema, a freshly initialised D" if official else
                   "it holds weights without optimiser state or RNG streams")
            print(f"note: continuing from '{path}' with fresh Adam moments ({why}); the run continues "
                  f"from the weights (not an exact resume)", flush=True)
        return Progress(**data["progress"]), data.get("augment", {}), False
    opts["G"].load_state_dict(data["opt_G"])
    opts["D"].load_state_dict(data["opt_D"])
    rng = data["rng"]
    exact = rng.get("world") == d.world
    if exact:
        torch.set_rng_state(rng["cpu"][d.rank])
        if device.type == "cuda" and rng["cuda"][d.rank] is not None:
            torch.cuda.set_rng_state(rng["cuda"][d.rank], device)
    return Progress(**data["progress"]), data.get("augment", {}), exact
