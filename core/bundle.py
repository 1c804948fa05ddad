"""Strip a training snapshot down to what viewing needs: config + G_ema + meta (no D, optimisers, RNG).

    python -m core.bundle --ckpt RUN_DIR|SNAPSHOT --out checkpoints/demo.pt [--note TEXT]

The result is an ordinary checkpoint (weights-only loadable, digest-checked, written atomically);
`meta` keeps the snapshot's kimg and dataset and records the digest of the snapshot it came from,
so a bundled file can be traced to its run. It cannot resume training (use the snapshot for that).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .checkpoint import build_generator, load_checkpoint, resolve_spec_path, save_checkpoint
from .config import ModelConfig, from_dict
from .errors import UserError, cli_main


def bundle(src_spec: str, out: Path, note: str = "") -> dict:
    """Write the viewing-only checkpoint `out` from a snapshot (file or run folder); returns its meta."""
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
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, cfg, G_ema, meta=meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="a training snapshot or a run folder (its newest snapshot)")
    p.add_argument("--out", required=True, type=Path, help="the viewing-only checkpoint to write")
    p.add_argument("--note", default="", help="a free-text note stored in meta")
    args = p.parse_args(argv)
    meta = bundle(args.ckpt, args.out, args.note)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB; {meta.get('kimg', '?')} kimg from {meta['bundled_from']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main(main)())
