"""Extract coloured meshes and density volumes from a checkpoint or a random model.

    python -m core.extract_mesh --ckpt PATH|RUN_DIR|demo|random:PRESET --seeds 0-3 --res 256 \
        --level auto --format ply,mrc --outdir DIR [--trunc 0.7] [--box 0.25] [--raw-level 25]

Meshes are in world coordinates (the cameras' frame), with per-vertex colours from the radiance
field and normals. The default crop box is the tri-plane cube [-cube_scale, cube_scale]^3.

--surface visibility (default) meshes the occlusion (core.geometry.visibility: 1 - the best
transmittance from outside over 26 grid directions), so an opaque shell comes out solid and an
opening stays open; --surface density meshes the density itself (the reference's surface).

--level auto (default) matches the renderer: six views are rendered at 48x48 with G.render, and the
level is the one whose iso-surface silhouette, projected into those views, has the best IoU with
the rendered opacity > 0.5 (for a faint render that reaches 0.5 nowhere, > half its peak opacity;
falling back to the 99th percentile of a 96^3 grid's values when nothing is rendered).
--level physical is 0.5 for the occlusion (half the light blocked) and, for the density,
sigma* = ln 2 / (2 * cube_scale / 256), the density at which a ray crossing one cell of a 256^3
grid reaches opacity 0.5 (far above a young model's densities). A number is an occlusion in (0, 1)
or an activated density. --raw-level thresholds the raw (pre-activation)
density instead, as the reference does (25), and implies --surface density. The .mrc and .npy
hold the density (activated, or raw with --raw-level); a visibility mesh's occlusion level is
written into the .mrc labels.
Grids are filled separably (core.geometry.fastgrid: per-plane projected rows per index pair, the
decoder's last layer per node), equal to plain G.query to float rounding; --plain-grid uses the
straightforward chunked G.query path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .checkpoint import load_generator
from .errors import UserError, cli_main
from .geometry import export
from .geometry.fastgrid import separable_grid
from .geometry.grid import (
    DEFAULT_CHUNK_POINTS,
    GPU_CHUNK_POINTS,
    auto_level,
    density_grid,
    generator_field,
    generator_raw_field,
    parse_box,
)
from .geometry.level import surface_level
from .geometry.mesh import BACKENDS, COLOR_MODES, extract_mesh
from .geometry.visibility import OCCLUSION_HALF, SURFACES, surface_grid
from .runtime import add_model_options, check_memory, model_class_label, parse_seeds, resolve_device, z_from_seed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.extract_mesh", description=__doc__.split("\n\n")[0])
    add_model_options(p)
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-3,10 (default 0)")
    p.add_argument("--outdir", required=True, help="output folder (created; files are overwritten by name)")
    p.add_argument("--res", type=int, default=256, help="grid samples per side, 32-1024 (default 256)")
    p.add_argument("--level", default="auto",
                   help="iso-level: an occlusion in (0, 1) (visibility surface) or an activated density "
                        "(density surface); 'auto' (default): the level whose surface silhouette best matches "
                        "(IoU) the rendered opacity > 0.5 of six 48x48 views, per seed (> half the peak for a "
                        "faint render; the 99th percentile of the grid when nothing is rendered); "
                        "'physical': 0.5 for the occlusion, ln 2 / (2*cube_scale/256) for the density")
    p.add_argument("--surface", choices=SURFACES, default=None,
                   help="'visibility' (default): the iso-surface of the occlusion (1 - the best transmittance "
                        "from outside over 26 directions), which fills opaque shells, its --level an occlusion "
                        "in (0, 1), 'physical' = 0.5; 'density': of the density itself (default with --raw-level)")
    p.add_argument("--raw-level", type=float, default=None,
                   help="threshold the raw pre-activation density instead (the reference uses 25)")
    p.add_argument("--format", default="ply", help=f"comma-separated: {', '.join(export.FORMATS)} (default ply)")
    p.add_argument("--box", default=None,
                   help="crop box: a half-size h ([-h, h]^3) or x0,y0,z0,x1,y1,z1 (default: the tri-plane cube)")
    p.add_argument("--backend", choices=BACKENDS, default="pymcubes", help="marching cubes implementation")
    p.add_argument("--keep-components", type=int, default=1, help="keep the N largest parts (0 = all; default 1)")
    p.add_argument("--smooth", type=int, default=0, help="Taubin smoothing iterations (default 0)")
    p.add_argument("--decimate", type=float, default=None, metavar="FRACTION",
                   help="quadric decimation keeping this fraction (0-1] of the faces (fast-simplification)")
    p.add_argument("--plain-grid", action="store_true",
                   help="fill the grid with plain chunked G.query calls instead of the separable path")
    p.add_argument("--colors", choices=COLOR_MODES, default="ray",
                   help="vertex colours: 'ray' (default) composites the field along the inward normal, as a camera "
                        "looking at the vertex sees it; 'surface' is the field's rgb at the vertex")
    p.add_argument("--no-close", action="store_true", help="leave the mesh open where the crop box cuts it")
    p.add_argument("--chunk-points", type=int, default=None, help="points per network call (memory bound)")
    p.add_argument("--ignore-memory", action="store_true",
                   help="run even when the estimated memory (~20 bytes per voxel) exceeds what is available")
    return p


@torch.no_grad()
def resolve_level(args, cube_scale: float) -> tuple[float | None, str]:
    """(the level, or None for the automatic one per seed; its description) from --level/--raw-level."""
    raw, visibility = args.raw_level is not None, args.surface == "visibility"
    quantity = "occlusion" if visibility else "activated density"
    if raw and visibility:
        raise UserError("--raw-level thresholds the raw density: it cannot be used with --surface visibility")
    if raw:
        return float(args.raw_level), "raw density"
    if args.level == "auto":
        return None, f"{quantity}, auto: silhouette-matched per seed"
    if args.level == "physical":
        return ((OCCLUSION_HALF, "occlusion, physical: half the light blocked") if visibility else
                (auto_level(cube_scale), "activated density, physical: ln 2 / (2*cube_scale/256)"))
    try:
        level = float(args.level)
    except ValueError:
        raise UserError(f"--level must be a number, 'auto' or 'physical', got '{args.level}'") from None
    if visibility and not 0 < level < 1:
        raise UserError(f"--level with --surface visibility is an occlusion in (0, 1), got {level:g}")
    return level, quantity


def _grid(G, planes, field, box, args, chunk: int, raw: bool, device, seed: int):
    """The density grid of one seed (the separable path, or --plain-grid), with a progress bar."""
    kind = "raw" if raw else "activated"
    with tqdm(total=args.res ** 3, desc=f"seed {seed} grid", unit="pt", unit_scale=True,
              file=sys.stdout, mininterval=0.5) as bar:
        if args.plain_grid:
            grid_field = generator_raw_field(G, planes) if raw else field
            return density_grid(grid_field, box, args.res, chunk, kind=kind, device=device, progress=bar.update)
        return separable_grid(G, planes, box, args.res, chunk, kind=kind, progress=bar.update)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seeds = parse_seeds(args.seeds)
    formats = export.parse_formats(args.format)
    if not 32 <= args.res <= 1024:
        raise UserError(f"--res must be between 32 and 1024, got {args.res}")
    if not args.ignore_memory:  # measured: ~0.7 GB for the process, then ~18-20 bytes per voxel (docs/benchmarks.md)
        check_memory(int(0.7 * 2**30 + 20 * args.res ** 3), f"a {args.res}^3 mesh", "--ignore-memory")
    device = resolve_device(args.device)
    G, info = load_generator(args.ckpt, device, seed=args.rand_init_seed)
    cfg = G.cfg
    cube_scale = cfg.generator.cube_scale
    box = parse_box(args.box, cube_scale)
    raw = args.raw_level is not None
    args.surface = args.surface or ("density" if raw else "visibility")
    quantity = "occlusion" if args.surface == "visibility" else "activated density"
    level, unit = resolve_level(args, cube_scale)
    chunk = args.chunk_points or (GPU_CHUNK_POINTS if device.type == "cuda" else DEFAULT_CHUNK_POINTS)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    c = model_class_label(cfg.generator.c_dim, args.class_idx, info.get("meta", {}), device=device)
    print(f"model: {info['source']} (preset {cfg.name}, device {device})")
    level_text = "auto" if level is None else f"{level:.4g}"
    print(f"grid: {args.res}^3 over box {box.lo} .. {box.hi} (voxel {box.spacing(args.res)[0]:.4g}); "
          f"level {level_text} ({unit})")

    for seed in seeds:
        t0 = time.time()
        w = G.mapping(z_from_seed(seed, cfg.generator.z_dim, device), c, psi=args.trunc)
        planes = G.planes(w)
        field = generator_field(G, planes)
        density = _grid(G, planes, field, box, args, chunk, raw, device, seed)
        grid = surface_grid(density, args.surface, device)
        seed_level = level
        if seed_level is None:
            choice = surface_level(G, planes, grid, args.surface, chunk)
            seed_level = choice.level
            print(f"seed {seed}: {choice.describe()}")
        written = []
        if any(f in export.MESH_FORMATS for f in formats):
            mesh = extract_mesh(grid, seed_level, backend=args.backend, close=not args.no_close,
                                keep_components=args.keep_components, smooth_iterations=args.smooth,
                                decimate=args.decimate, color_field=field, chunk_points=chunk,
                                color_mode=args.colors)
            for f in formats:
                if f in export.MESH_FORMATS:
                    export.save_mesh(mesh, outdir / f"seed{seed:04d}.{f}", f)
                    written.append(f)
            shape = f"{len(mesh.vertices)} vertices, {len(mesh.faces)} faces"
        else:
            shape = "no mesh asked for"
        if "mrc" in formats:
            export.save_mrc_for_mesh(density, outdir / f"seed{seed:04d}.mrc", args.surface, seed_level)
            written.append("mrc")
        if "npy" in formats:
            export.save_npy(density, outdir / f"seed{seed:04d}.npy")
            written.append("npy")
        print(f"seed {seed}: {shape}; {quantity if not raw else 'raw density'} "
              f"{grid.values.min():.4g} .. {grid.values.max():.4g}; "
              f"wrote seed{seed:04d}.{{{','.join(written)}}} ({time.time() - t0:.1f} s)")
    print(f"wrote {len(seeds)} seed(s) to {outdir}")
    return 0


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    sys.exit(cli())
