"""Strip a training snapshot down to what viewing needs: config + G_ema + meta (no D, optimisers, RNG).

    python -m core.bundle --ckpt RUN_DIR|SNAPSHOT --out checkpoints/demo.pt [--note TEXT] [--training-state]

The result is an ordinary checkpoint (weights-only loadable, digest-checked, written atomically);
`meta` keeps the snapshot's kimg and dataset and records the digest of the snapshot it came from,
so a bundled file can be traced to its run. With --training-state it also keeps G, D, the
augmentation state and the progress counters (not the optimiser moments or RNG streams, which
double the size): `python -m core.train --resume BUNDLE` then continues training from its weights,
which is how a model trained in short CPU runs carries on from the copy in the repository.
Without it the bundle cannot resume training (use the snapshot for that).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .checkpoint import build_generator, load_checkpoint, resolve_spec_path, save_checkpoint
from .config import ModelConfig, from_dict
from .errors import UserError, cli_main


def bundle(src_spec: str, out: Path, note: str = "", training_state: bool = False,
           viewer_class: int | None = None) -> dict:
    """Write the viewing-only checkpoint `out` from a snapshot (file or run folder); returns its meta.

    viewer_class: the class a viewer with no saved session or --class opens a class-conditional
    model at (meta "viewer_class")."""
    src = resolve_spec_path(src_spec)
    data = load_checkpoint(src)
    if out.resolve() == src.resolve():
        raise UserError(f"--out '{out}' is the source snapshot itself: choose another file")
    cfg = from_dict(ModelConfig, data["config"])
    G_ema = build_generator(cfg, data["G_ema"])
    meta = dict(data.get("meta", {}))
    meta.update({"bundled_from": src.name, "source_digest": data["digest"]})
    if note:
        meta["note"] = note
    if viewer_class is not None:
        c_dim = cfg.generator.c_dim
        if not 0 <= viewer_class < c_dim:
            raise UserError(f"--viewer-class {viewer_class}: the model has {c_dim} classes"
                            + (" (it is unconditional)" if c_dim == 0 else f"; give 0-{c_dim - 1}"))
        meta["viewer_class"] = int(viewer_class)
    extra = {}
    if training_state:
        missing = [k for k in ("G", "D", "progress") if k not in data]
        if missing:
            raise UserError(f"'{src}' has no {', '.join(missing)}: --training-state needs a training snapshot")
        extra = {k: data[k] for k in ("G", "D", "augment", "progress") if k in data}
        meta["training_state"] = "G, D, augment, progress (no optimiser moments, no RNG)"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, cfg, G_ema, meta=meta, **extra)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="a training snapshot or a run folder (its newest snapshot)")
    p.add_argument("--out", required=True, type=Path, help="the viewing-only checkpoint to write")
    p.add_argument("--note", default="", help="a free-text note stored in meta")
    p.add_argument("--training-state", action="store_true",
                   help="also keep G, D and the counters so that core.train --resume BUNDLE continues training")
    p.add_argument("--viewer-class", type=int, default=None,
                   help="class a class-conditional model opens at in a viewer without a session or --class")
    args = p.parse_args(argv)
    meta = bundle(args.ckpt, args.out, args.note, args.training_state, args.viewer_class)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB; {meta.get('kimg', '?')} kimg from {meta['bundled_from']})")
    return 0


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    raise SystemExit(cli())
