"""Convert an official EpiGRAF or EG3D snapshot into an EpiGRAF Studio checkpoint, once, without running it.

    python -m core.import_official SRC.pkl --out DST.pt [--training-state]

Every command that takes a checkpoint also opens the .pkl directly (converted on load); converting
once saves the conversion time and gives a file that loads with `torch.load(weights_only=True)`.
The result keeps G_ema and the snapshot's config (read from the pickled OmegaConf tree); with
--training-state also the training generator G, the ADA probability and the image counter, so
that `python -m core.train --resume DST.pt --data ...` fine-tunes the official model (EpiGRAF's
official discriminator is not converted: D starts from a fresh initialisation; EG3D's dual
discriminator is, and its image counter comes from the file name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .checkpoint import build_generator, load_checkpoint, save_checkpoint
from .config import ModelConfig, from_dict
from .errors import UserError, cli_main
from .official.load import is_pickle


def import_official(src: Path, out: Path, training_state: bool = False, force: bool = False) -> dict:
    """Write `out` from the official snapshot `src`; returns the meta it stored."""
    if not src.is_file():
        raise UserError(f"no file at '{src}': pass an official network-snapshot-*.pkl")
    if not is_pickle(src):
        raise UserError(f"'{src}' is not a pickle: pass an official EpiGRAF network-snapshot-*.pkl")
    if out.exists() and out.resolve() == src.resolve():
        raise UserError(f"--out '{out}' is the source snapshot itself: choose another file")
    if out.exists() and not force:
        raise UserError(f"'{out}' exists: choose another --out, or pass --force to replace it")
    data = load_checkpoint(src)
    cfg = from_dict(ModelConfig, data["config"])
    G_ema = build_generator(cfg, data["G_ema"])  # refuses weights that do not fit the config
    meta = dict(data["meta"])
    extra = {}
    if training_state:
        if "G" not in data:
            raise UserError(f"'{src}' holds no training generator G: convert it without --training-state")
        build_generator(cfg, data["G"])
        extra = {k: data[k] for k in ("G", "D", "augment", "progress") if k in data}
        meta["training_state"] = ("G, D, progress" if "D" in extra else
                                  "G, augment p, progress (official D not converted)")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, cfg, G_ema, meta=meta, **extra)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.import_official", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="an official EpiGRAF or EG3D network-snapshot-*.pkl (or EG3D's released .pkl)")
    p.add_argument("--out", required=True, type=Path, help="the EpiGRAF Studio checkpoint (.pt) to write")
    p.add_argument("--training-state", action="store_true",
                   help="also keep G, the ADA probability and the image counter (for core.train --resume)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = p.parse_args(argv)
    meta = import_official(args.src, args.out, args.training_state, args.force)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB; {meta.get('kimg', '?')} kimg, {meta['source_note']})")
    return 0


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    raise SystemExit(cli())
