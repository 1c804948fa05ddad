"""Render samples, depth maps, grids and videos from a checkpoint or a random model.

    python -m core.generate --ckpt PATH|RUN_DIR|demo|random:PRESET --seeds 0-7 --outdir out/ \
        [--trunc 0.7] [--res 128] [--grid] [--depth] [--raw] [--video orbit|interp --frames 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from . import cameras as camlib
from .checkpoint import load_generator
from .errors import UserError, cli_main
from .images import depth_to_uint8, image_to_uint8, make_grid, save_png
from .latents import along_keyframes
from .runtime import add_model_options, model_class_label, parse_seeds, resolve_device, z_from_seed
from .video import write_mp4


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.generate", description=__doc__.split("\n\n")[0])
    add_model_options(p)
    p.add_argument("--seeds", default="0-7", help="seeds, e.g. 0-7,10 (default 0-7)")
    p.add_argument("--outdir", required=True, help="output folder (created; files are overwritten by name)")
    p.add_argument("--res", type=int, default=None, help="output resolution (default: the model's)")
    p.add_argument("--yaw", type=float, default=None, help="camera yaw in radians (default: the prior's mean)")
    p.add_argument("--pitch", type=float, default=None, help="camera pitch in radians (default: the prior's mean)")
    p.add_argument("--samples-mult", type=float, default=1.0, help="multiply coarse and fine sample counts")
    p.add_argument("--grid", action="store_true", help="also write grid.png with all seeds")
    p.add_argument("--depth", action="store_true", help="also write depth maps (near white, far black)")
    p.add_argument("--raw", action="store_true", help="EG3D models: also write the neural render before the "
                                                      "super-resolution (seedNNNN_raw.png)")
    p.add_argument("--video", choices=["orbit", "interp"], default=None,
                   help="orbit: all seeds (as a grid) around the object; interp: through the seeds in W")
    p.add_argument("--frames", type=int, default=60, help="video frames (default 60)")
    p.add_argument("--fps", type=int, default=30, help="video frame rate")
    return p


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if args.res is not None and args.res < 2:
        raise UserError("--res must be at least 2")
    if args.video and args.frames < 1:
        raise UserError("--frames must be at least 1")
    device = resolve_device(args.device)
    G, info = load_generator(args.ckpt, device, seed=args.rand_init_seed)
    cfg = G.cfg
    res = args.res or cfg.img_resolution
    nc = max(2, round(cfg.render.num_coarse * args.samples_mult))
    nf = round(cfg.render.num_fine * args.samples_mult)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    c = model_class_label(cfg.generator.c_dim, args.class_idx, info.get("meta", {}), device=device)
    print(f"model: {info['source']} (preset {cfg.name}, {res}x{res}, {nc}+{nf} samples, device {device})")

    ws = [G.mapping(z_from_seed(s, cfg.generator.z_dim, device), c, psi=args.trunc) for s in seeds]
    cam = camlib.from_config(cfg.camera, yaw=args.yaw, pitch=args.pitch, device=device)

    def render(w, cams):
        return G.render(G.planes(w), cams, resolution=res, num_coarse=nc, num_fine=nf, w=w)

    if args.raw and cfg.generator.family != "eg3d":
        raise UserError("--raw is for EG3D models (their neural render before the super-resolution); "
                        f"this is a {cfg.generator.family} model")
    images, depths = [], []
    for seed, w in zip(tqdm(seeds, desc="samples", unit="img", file=sys.stdout), ws):
        out = render(w, cam)
        images.append(image_to_uint8(out["image"][0]))
        save_png(images[-1], outdir / f"seed{seed:04d}.png")
        if args.depth:  # EG3D's depth is at the neural resolution: shown at the image's size
            depths.append(depth_to_uint8(_at_size(out["depth"], res)[0], float(cam.near[0]), float(cam.far[0])))
            save_png(depths[-1], outdir / f"seed{seed:04d}_depth.png")
        if args.raw:
            save_png(image_to_uint8(_at_size(out["image_raw"], res)[0]), outdir / f"seed{seed:04d}_raw.png")
    if args.grid:
        cols = min(len(images), 8)
        save_png(make_grid(images, cols), outdir / "grid.png")
        if args.depth:
            save_png(make_grid(depths, cols), outdir / "grid_depth.png")

    if args.video == "orbit":
        angles = camlib.orbit_angles(cfg.camera, args.frames)
        planes = [G.planes(w) for w in ws]
        cols = min(len(ws), 4)

        def frames():
            for a in tqdm(angles, desc="orbit video", unit="frame", file=sys.stdout):
                cams = camlib.from_config(cfg.camera, yaw=float(a[0]), pitch=float(a[1]), device=device)
                tiles = [image_to_uint8(G.render(p, cams, resolution=res, num_coarse=nc, num_fine=nf, w=w)["image"][0])
                         for p, w in zip(planes, ws)]
                yield make_grid(tiles, cols)
        n = write_mp4(frames(), outdir / "orbit.mp4", args.fps)
        print(f"wrote {outdir / 'orbit.mp4'} ({n} frames)")
    elif args.video == "interp":
        def frames():
            for k in tqdm(range(args.frames), desc="interp video", unit="frame", file=sys.stdout):
                w = along_keyframes(ws, k / max(args.frames - 1, 1), "lerp")
                yield image_to_uint8(render(w, cam)["image"][0])
        n = write_mp4(frames(), outdir / "interp.mp4", args.fps)
        print(f"wrote {outdir / 'interp.mp4'} ({n} frames)")
    print(f"wrote {len(seeds)} image(s) to {outdir}")
    return 0


def _at_size(x: torch.Tensor, res: int) -> torch.Tensor:
    """[B, C, h, w] shown at res x res: nearest-neighbour, so each neural pixel stays visible."""
    return x if x.shape[-1] == res else torch.nn.functional.interpolate(x, size=(res, res), mode="nearest")


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    sys.exit(cli())
