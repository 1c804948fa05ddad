"""Train EpiGRAF (patch-wise tri-plane GAN) on a dataset.

    python -m core.train --data PATH --outdir DIR --preset NAME [--kimg N] [--batch N]
        [--resume auto|PATH] [--gpus N] [--device auto|cpu|cuda] [--train.r1_gamma 0.05 ...]

The same command runs on the CPU, one GPU or N GPUs (torchrun + process group; with --device cpu,
N gloo processes). DIR is the run folder: config.json, stats.jsonl, tensorboard/, samples/ and
network-snapshot-*.pt. --resume auto continues from the newest snapshot in DIR, exactly.
DIR/train.pid.json names the running process (the viewer's Training panel attaches to it and can
stop it); a second run into a DIR that a live run holds is refused.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from pathlib import Path

import torch

from .checkpoint import list_snapshots, load_checkpoint
from .config import PRESETS, ModelConfig, from_dict, get_preset
from .config_cli import add_config_arguments, apply_overrides, overrides_from_args
from .errors import UserError, cli_main
from .runtime import resolve_device
from .training.run_record import check_run_folder_free, claim_run_folder, record_this_run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder or .zip with a dataset.json")
    p.add_argument("--outdir", required=True, help="run folder (created)")
    p.add_argument("--preset", default="demo", help=" | ".join(PRESETS))
    p.add_argument("--kimg", type=float, default=None, help="training length in kimg (default: the preset's)")
    p.add_argument("--batch", type=int, default=None, help="total batch size (default: the preset's)")
    p.add_argument("--resume", default=None, help="auto (newest snapshot in --outdir, or a fresh start) or a snapshot path")
    p.add_argument("--gpus", type=int, default=1, help="processes to launch with torchrun (GPUs, or CPU processes)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any config override")
    p.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)
    add_config_arguments(p)
    return p


def _relaunch_with_torchrun(argv: list[str], n: int) -> int:
    """Re-run this command under torchrun with n processes (the --gpus option removed)."""
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--gpus":
            skip = True
            continue
        if a.startswith("--gpus="):
            continue
        rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "core.train", *rest]
    print("launching:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def _resolve_resume(arg: str | None, outdir: Path) -> Path | None:
    snaps = list_snapshots(outdir, official=False)  # newest first
    if arg is None:
        if snaps:
            raise UserError(f"'{outdir}' already holds a run ({snaps[0].name}): pass --resume auto to continue "
                            f"it, or choose another --outdir")
        return None
    if arg == "auto":
        return snaps[0] if snaps else None
    path = Path(arg)
    if path.is_dir():
        raise UserError(f"'{path}' is a folder: pass one of its snapshots, or --resume auto to continue the run "
                        f"in --outdir")
    if not path.is_file():
        raise UserError(f"no snapshot at '{path}' to resume from")
    return path


def resolve_config(args: argparse.Namespace, resume: Path | None, read_dataset: bool = True) -> ModelConfig:
    """The run's config from the command line: the preset (or the snapshot resumed) with every
    override applied. A fresh start reads the dataset (read_dataset) for its label count and to
    note a resolution that differs from the preset's; a resume may change only train.* options (and
    generator.c_dim from 0). Every refusal is one UserError line, before any training."""
    overrides = overrides_from_args(args) + list(args.set)
    if args.kimg is not None:
        overrides.append(f"train.kimg={args.kimg}")
    if args.batch is not None:
        overrides.append(f"train.batch={args.batch}")
    if resume is not None:
        cfg = from_dict(ModelConfig, load_checkpoint(resume)["config"])
        # train.* options may change; so may generator.c_dim from 0 (class labels added to an
        # unconditional model, core/training/conditioning.py)
        labels = [o for o in overrides if o.startswith("generator.c_dim=")]
        saved = cfg.generator.c_dim
        for o in labels:
            if saved != 0 and o != f"generator.c_dim={saved}":
                raise UserError(f"'{resume}' is class-conditional with c_dim {saved}: resume it with that "
                                f"or without --generator.c_dim (got {o})")
        changed = [o for o in overrides if not o.startswith("train.") and o not in labels]
        if changed:
            raise UserError(f"only train.* options (and generator.c_dim, to add class labels to an unconditional "
                            f"model) can change when resuming (got {changed[0]})")
    else:
        cfg = get_preset(args.preset)
        checked = copy.deepcopy(cfg)
        apply_overrides(checked, overrides)  # a bad value is one line before the data is read
        if read_dataset:
            from .data.dataset import ImageDataset
            ds = ImageDataset(args.data, camera_cfg=cfg.camera)
            labels_used = checked.generator.family != "eg3d"  # EG3D conditions on the camera, not on classes
            if labels_used and not any(o.startswith("generator.c_dim=") for o in overrides):
                cfg.generator.c_dim = ds.label_dim
            if ds.resolution != cfg.img_resolution and not any(o.startswith("img_resolution=") for o in overrides):
                print(f"note: dataset images are {ds.resolution}^2; training at the preset's {cfg.img_resolution}^2 "
                      f"(resized on the fly)")
    apply_overrides(cfg, overrides)
    if cfg.train.kimg <= 0 or cfg.train.batch <= 0:
        raise UserError(f"--kimg and --batch must be positive (got kimg {cfg.train.kimg:g}, batch {cfg.train.batch})")
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if (args.kimg is not None and not args.kimg > 0) or (args.batch is not None and args.batch <= 0):
        raise UserError(f"--kimg and --batch must be positive (got {args.kimg}, {args.batch})")
    outdir = Path(args.outdir)
    check_run_folder_free(outdir)  # in every process: a refusal must not leave the others waiting
    if args.gpus > 1 and "WORLD_SIZE" not in os.environ:
        return _relaunch_with_torchrun(argv, args.gpus)
    device = resolve_device(args.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    resume = _resolve_resume(args.resume, outdir)
    cfg = resolve_config(args, resume, read_dataset=True)
    from .training import distributed as distlib
    from .training.loop import train
    d = distlib.init_from_env(device.type)
    if d.main:
        outdir.mkdir(parents=True, exist_ok=True)
        claim_run_folder(outdir)  # atomic: of two runs started at once into one folder, one trains
        record_this_run(outdir)  # so that the viewer can attach to a run started by hand, and stop it
        print(f"training {cfg.name} on {args.data} -> {outdir} ({d.world} process(es), device {device})")
    try:
        train(cfg, args.data, outdir, resume, device, d, max_steps=args.max_steps)
    finally:
        distlib.shutdown(d)
    return 0


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    sys.exit(cli())
