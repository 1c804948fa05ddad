"""Checkpoints: one file that loads without executing code, and the `--ckpt` resolver.

A checkpoint is `torch.save` of a plain dict (tensors on CPU, numbers, strings, lists, dicts):

    {"format": "epigraf-studio", "version": 2, "config": <ModelConfig as a dict>,
     "G_ema": <state dict>, ... training state (G, D, optimisers, counters, RNG states) ...,
     "meta": {...}}

It is read with `torch.load(weights_only=True)`, which refuses anything but tensors and plain
containers; a SHA-256 `digest` over the contents catches corruption that the zip container does
not (flipped bytes in tensor data). It is written atomically (temp file in the same folder, fsync, rename), so a crash never
leaves a half-written file under the real name. Older format versions are migrated on load
(`core.migrations`); an official EpiGRAF `network-snapshot-*.pkl` is converted on load
(`core.official`: nothing from the pickle is executed) into the same in-memory form.

`--ckpt` accepts a file (ours or an official .pkl), a run folder (its newest `network-snapshot-*.pt`,
else `*.pkl`), `demo` (the bundled demo model, `checkpoints/demo.pt`) or `random:PRESET` (a randomly
initialised model of any preset, seeded, for smoke runs).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig, from_dict, get_preset, to_dict
from .errors import UserError
from .fileio import atomic_write
from .migrations import v1_to_v2
from .networks.eg3d import build as build_model
from .networks.generator import TriPlaneGenerator
from .official.load import is_pickle, load_official

FORMAT = "epigraf-studio"
VERSION = 2  # 2: conv0 kernels as the reference stores them, activation clamp, pdf eps (core/migrations.py)
SNAPSHOT_GLOB = "network-snapshot-*.pt"
OFFICIAL_GLOB = "network-snapshot-*.pkl"
DEMO_SPEC = "demo"
BUNDLED_DEMO = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.pt"


def demo_path(bundled: Path | None) -> Path:
    """The bundled demo model's file (what `demo` means), or a one-line error when it is missing."""
    if bundled is None or not bundled.exists():
        raise UserError(f"the bundled demo model is missing ({bundled}): restore it with "
                        f"'git checkout -- checkpoints/', or use random:demo (a random initialisation)")
    return bundled


def resolve_spec_path(spec: str) -> Path:
    """A --ckpt value other than random:PRESET as a checkpoint file path (`demo`, run folder, file)."""
    if spec == DEMO_SPEC:
        return demo_path(BUNDLED_DEMO)
    path = Path(spec).expanduser()
    return newest_snapshot(path) if path.is_dir() else path


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict detached, cloned and on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file beside `path`, fsync, then rename over it."""
    atomic_write(path, lambda f: torch.save(obj, f))


def save_checkpoint(path: str | os.PathLike, cfg: ModelConfig, G_ema: torch.nn.Module, **extra: Any) -> None:
    """Write a checkpoint: config + G_ema, plus any extra plain entries (training state, meta)."""
    data = {"format": FORMAT, "version": VERSION, "config": to_dict(cfg), "G_ema": cpu_state(G_ema)}
    for k, v in extra.items():
        data[k] = cpu_state(v) if isinstance(v, torch.nn.Module) else v
    data["digest"] = content_digest(data)
    atomic_torch_save(data, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint file; every failure is a one-line UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no checkpoint at '{path}': check the path, or use --ckpt random:PRESET for a random model")
    if path.is_dir():
        raise UserError(f"'{path}' is a folder: pass a checkpoint file or a run folder with snapshots")
    if not zipfile.is_zipfile(path):
        if is_pickle(path):  # an official EpiGRAF network-snapshot-*.pkl: converted without running it
            return official_checkpoint(path)
        raise UserError(f"'{path}' is corrupt, truncated or not a checkpoint (no zip archive inside); "
                        f"use another snapshot")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(f"refused '{path}': it holds objects other than tensors and plain data, so it "
                        f"may have been tampered with or comes from another program ({_blocked(e)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        raise UserError(f"'{path}' is corrupt or truncated ({_short(str(e)) or type(e).__name__}); "
                        f"use another snapshot") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"'{path}' is not an EpiGRAF Studio checkpoint")
    if data.get("version") not in (1, VERSION):
        raise UserError(f"'{path}' has checkpoint format version {data.get('version')}, this code reads "
                        f"versions 1-{VERSION}: use a matching release of EpiGRAF Studio")
    if not isinstance(data.get("config"), dict) or not isinstance(data.get("G_ema"), dict):
        raise UserError(f"'{path}' lacks its config or G_ema weights: the file is incomplete")
    if data.get("digest") != content_digest(data):
        raise UserError(f"'{path}' failed its integrity check (contents changed since it was written); "
                        f"use another snapshot")
    if data["version"] == 1:
        data = v1_to_v2(data, _param_names)
    return data


def official_checkpoint(path: Path) -> dict[str, Any]:
    """An official EpiGRAF snapshot as an in-memory checkpoint of the current format (core.official)."""
    config, entries, meta = load_official(path)
    data = {"format": FORMAT, "version": VERSION, "config": config, **entries, "meta": meta}
    data["digest"] = content_digest(data)
    return data


def _param_names(config: dict[str, Any]) -> list[str]:
    """G's parameter names in `G.parameters()` order (the optimiser's indexing) for a config dict."""
    with torch.device("meta"):
        G = build_model(from_dict(ModelConfig, config))
    return [n for n, _ in G.named_parameters()]


def _blocked(e: Exception) -> str:
    """The line of a weights-only refusal that names the blocked global."""
    lines = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln or "global" in ln]
    return (lines[-1] if lines else _short(str(e)))[:200]


def content_digest(data: dict[str, Any]) -> str:
    """SHA-256 over every entry except 'digest': keys, tensor dtypes, shapes and bytes, plain values."""
    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted(x, key=str):
                if k == "digest" and x is data:
                    continue
                h.update(repr(k).encode())
                walk(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                walk(v)
            h.update(b"]")
        else:
            h.update(repr(x).encode())

    walk(data)
    return h.hexdigest()


def _short(msg: str) -> str:
    line = next((ln.strip() for ln in msg.splitlines() if ln.strip()), "")
    return line[:200]


def list_snapshots(run_dir: str | os.PathLike, official: bool = True) -> list[Path]:
    """A run folder's snapshots, newest (highest kimg) first: ours (.pt), else, with `official`, an
    official run's (.pkl). [] when there are none."""
    d = Path(run_dir)
    snaps = sorted(d.glob(SNAPSHOT_GLOB), reverse=True)
    return snaps or (sorted(d.glob(OFFICIAL_GLOB), reverse=True) if official else [])


def newest_snapshot(run_dir: Path) -> Path:
    """The newest snapshot of a run folder (list_snapshots), or a one-line error."""
    snaps = list_snapshots(run_dir)
    if not snaps:
        raise UserError(f"no {SNAPSHOT_GLOB} (or official {OFFICIAL_GLOB}) in run folder '{run_dir}'")
    return snaps[0]


def build_generator(cfg: ModelConfig, state: dict[str, torch.Tensor] | None = None, seed: int = 0
                    ) -> TriPlaneGenerator:
    """A generator for `cfg`: with `state` loaded strictly, else randomly initialised from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_model(cfg)
    if state is not None:
        missing, unexpected = G.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(f"checkpoint weights do not fit its config (missing {list(missing)[:3]}, "
                            f"unexpected {list(unexpected)[:3]}): the file is inconsistent")
    return G


def load_generator(spec: str, device: str | torch.device = "cpu", seed: int = 0
                   ) -> tuple[TriPlaneGenerator, dict[str, Any]]:
    """Resolve a --ckpt value (file | run folder | demo | random:PRESET) to an eval-mode G_ema and its metadata."""
    if spec.startswith("random:"):
        cfg = get_preset(spec.split(":", 1)[1])
        G = build_generator(cfg, seed=seed)
        info = {"source": spec, "config": to_dict(cfg)}
    else:
        path = resolve_spec_path(spec)
        data = load_checkpoint(path)
        cfg = from_dict(ModelConfig, data["config"])
        G = build_generator(cfg, data["G_ema"])
        info = {"source": str(path), "config": data["config"], "meta": data.get("meta", {})}
    return G.eval().requires_grad_(False).to(device), info
