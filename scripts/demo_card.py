"""Pictures and numbers for a model card: a sample grid from several views, a mesh render, KID/FID.

    python scripts/demo_card.py --ckpt demo --data data/demo_objects.zip --outdir checkpoints \
        [--seeds 0-7] [--mesh-res 128] [--num-gen 896] [--prefix demo] [--surface visibility|density]

Writes PREFIX_samples.png (a row per seed, or for a class-conditional model per class and seed:
6 yaws on the equator, one from above, one from below), PREFIX_overview.png (a row of real images
spread evenly through the dataset, then seeds 0..N-1 from one view, or a row of seeds per class:
how the model covers the data), PREFIX_mesh.png (the extracted mesh of each of the first --meshes
rows, rasterised from 4 views with its vertex colours) and, for a class-conditional model on
labelled data, PREFIX_pairs.png (per class, real views above and the model's seed 0 from the same
cameras below). It prints the numbers as JSON (also PREFIX_card.json) to paste into the card:
KID/FID; on a dataset with class labels, the object each sample's nearest real image shows
(core/metrics/nearest.py); per sample seed how solid its renders are (opacity_stats); per mesh seed
the mesh's size, level and shape figures; per class the mean absolute difference of the pairs
(same_camera_l1, in 0-255 units).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core import cameras as camlib
from core.checkpoint import load_checkpoint, load_generator
from core.data.dataset import ImageDataset
from core.data.mesh_render import MeshRenderer, mesh_to_data
from core.geometry import grid as gridlib
from core.geometry.fastgrid import separable_grid
from core.geometry.level import generator_level
from core.geometry.mesh import NoSurfaceError, extract_mesh
from core.geometry.visibility import SURFACES, surface_grid
from core.metrics.evaluate import generated_features, real_features
from core.metrics.features import load_inception
from core.metrics.fid_kid import fid_from_features, kid_from_features
from core.metrics.nearest import class_figures, class_names, real_labels
from core.runtime import class_label, parse_seeds, z_from_seed


def views(cfg, n_equator: int = 6) -> camlib.Cameras:
    yaw = [2 * math.pi * i / n_equator for i in range(n_equator)] + [0.6, 0.6]
    pitch = [math.pi / 2] * n_equator + [0.35, math.pi - 0.35]
    c = cfg.camera
    return camlib.from_angles(torch.tensor(yaw), torch.tensor(pitch), radius=c.radius, fov_deg=c.fov_deg, cfg=c)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    return ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def tile(rows: list[np.ndarray]) -> Image.Image:
    return Image.fromarray(np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0))


def subjects(G, info: dict, seeds: list[int]) -> list[tuple[int, int | None, str]]:
    """What the card shows, as (seed, class, name): the seeds of an unconditional model; of a
    class-conditional one, each class with each seed."""
    c_dim = G.cfg.generator.c_dim
    if c_dim == 0:
        return [(s, None, f"seed {s}") for s in seeds]
    names = info.get("meta", {}).get("class_names") or [str(k) for k in range(c_dim)]
    return [(s, k, f"{names[k]}, seed {s}") for k in range(c_dim) for s in seeds]


def latent(G, seed: int, cls: int | None) -> torch.Tensor:
    """w (psi 1) of a seed, and of a class when the model has them."""
    c = class_label(G.cfg.generator.c_dim, cls)
    return G.mapping(z_from_seed(seed, G.cfg.generator.z_dim), c, psi=1.0)


def overview(G, dataset: ImageDataset, n: int, per_row: int = 16) -> Image.Image:
    """One row of `per_row` real images spread evenly through the dataset, a thin gap, then seeds
    0..n-1 (psi 1) from one three-quarter view, `per_row` to a row; of a class-conditional model,
    a row per class of seeds 0..per_row-1."""
    cfg, res = G.cfg, G.cfg.img_resolution
    c = cfg.camera
    cam = camlib.from_angles(torch.tensor([0.6]), torch.tensor([1.25]), radius=c.radius, fov_deg=c.fov_deg, cfg=c)
    idx = np.linspace(0, dataset.num_images - 1, per_row).round().astype(int)
    real = [dataset.load_image(int(i)).permute(1, 2, 0).numpy() for i in idx]
    c_dim = cfg.generator.c_dim
    which = [(s, None) for s in range(n)] if c_dim == 0 else [(s, k) for k in range(c_dim) for s in range(per_row)]
    fake = []
    with torch.no_grad():
        for s, k in which:
            fake.append(to_uint8(G.render(G.planes(latent(G, s, k)), cam, resolution=res)["image"])[0])
    white = np.full((res, res, 3), 255, np.uint8)
    fake += [white] * (-len(fake) % per_row)
    rows = [real, [white[: res // 4]] * per_row] + [fake[i:i + per_row] for i in range(0, len(fake), per_row)]
    return tile([np.stack(r) for r in rows])


def pairs(G, dataset: ImageDataset, per_class: int = 4) -> tuple[Image.Image, dict]:
    """Of a class-conditional model on labelled data: per class, `per_class` real views spread
    through the class (top row) and seed 0 of that class rendered from the same cameras (below);
    and per class the mean absolute difference of the two in [0, 255] units."""
    res, c_dim = G.cfg.img_resolution, G.cfg.generator.c_dim
    names = class_names(dataset)
    labels = torch.tensor([int(dataset.get_label(i).argmax()) for i in range(dataset.num_images)])
    rows, l1 = [], {}
    with torch.no_grad():
        for k in range(c_dim):
            idx = (labels == k).nonzero().flatten()
            idx = idx[np.linspace(0, len(idx) - 1, per_class).round().astype(int)]
            items = [dataset[int(i)] for i in idx]
            real = np.stack([it["image"].permute(1, 2, 0).numpy() for it in items])
            cams = camlib.from_matrices(torch.stack([it["cam2world"] for it in items]),
                                        torch.stack([it["intrinsics"] for it in items]), G.cfg.camera)
            planes = G.planes(latent(G, 0, k))
            fake = to_uint8(G.render(planes.expand(len(items), -1, -1, -1, -1), cams, resolution=res)["image"])
            rows += [real, fake]
            l1[names[k]] = round(float(np.abs(real.astype(float) - fake.astype(float)).mean()), 2)
    return tile(rows), l1


def opacity_stats(op: torch.Tensor) -> dict:
    """How solid the renders [V, H, W] of one latent are, as the bundled-model test judges them: the
    90th percentile of the opacity in the central window (the middle half of each side), its lowest
    over the views; and the mean opacity of the outer sixteenth on each side, its highest."""
    h, w = op.shape[-2:]
    centre = op[:, h // 4: h - h // 4, w // 4: w - w // 4].flatten(1).quantile(0.9, dim=1)
    bh, bw = max(1, h // 16), max(1, w // 16)
    border = torch.cat([op[:, :bh].flatten(1), op[:, -bh:].flatten(1),
                        op[:, :, :bw].flatten(1), op[:, :, -bw:].flatten(1)], 1).mean(1)
    return {"centre_p90_min": round(float(centre.min()), 3), "border_max": round(float(border.max()), 3)}


def shell_stats(mesh) -> dict:
    """Genus (from the Euler number, for one closed surface) and enclosed volume over the convex hull's:
    a hollow field's iso-surface is a thin shell with a low fraction, and openings raise the genus."""
    if not mesh.is_watertight:
        return {}
    return {"genus": int((2 - mesh.euler_number) // 2),
            "volume_over_hull": round(float(mesh.volume / mesh.convex_hull.volume), 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default="demo")
    p.add_argument("--data", required=True)
    p.add_argument("--outdir", type=Path, default=Path("checkpoints"))
    p.add_argument("--prefix", default="demo")
    p.add_argument("--seeds", default="0-7", help="seeds shown (of a class-conditional model: per class)")
    p.add_argument("--meshes", type=int, default=4, help="meshes of the first N rows of the samples")
    p.add_argument("--mesh-res", type=int, default=128)
    p.add_argument("--num-gen", type=int, default=896)
    p.add_argument("--res", type=int, default=128, help="sample render resolution")
    p.add_argument("--overview", type=int, default=64, help="seeds in the overview picture (0: none)")
    p.add_argument("--surface", choices=SURFACES, default="visibility", help="which surface the meshes are (core.extract_mesh)")
    p.add_argument("--no-metrics", action="store_true", help="pictures and meshes only")
    args = p.parse_args()
    G, info = load_generator(args.ckpt)
    cfg = G.cfg
    cams = views(cfg)
    seeds = parse_seeds(args.seeds)
    shown = subjects(G, info, seeds)
    rows, opacity = [], []
    with torch.no_grad():
        for s, k, name in shown:
            planes = G.planes(latent(G, s, k))
            out = G.render(planes.expand(len(cams), -1, -1, -1, -1), cams, resolution=args.res)
            rows.append(to_uint8(out["image"]))
            opacity.append({"seed": s, **({} if k is None else {"class": k, "name": name}),
                            **opacity_stats(out["opacity"].reshape(len(cams), args.res, args.res))})
    args.outdir.mkdir(parents=True, exist_ok=True)
    tile(rows).save(args.outdir / f"{args.prefix}_samples.png")
    dataset = ImageDataset(args.data, cfg.img_resolution, mirror=False, camera_cfg=cfg.camera)
    if args.overview > 0:
        overview(G, dataset, args.overview).save(args.outdir / f"{args.prefix}_overview.png")
    same_camera = None
    if cfg.generator.c_dim > 0 and dataset.label_dim == cfg.generator.c_dim:
        picture, same_camera = pairs(G, dataset)
        picture.save(args.outdir / f"{args.prefix}_pairs.png")

    renderer = MeshRenderer(160)
    mesh_rows, mesh_stats = [], []
    box = gridlib.parse_box(None, cfg.generator.cube_scale)
    with torch.no_grad():
        for s, k, name in shown[:args.meshes]:
            planes = G.planes(latent(G, s, k))
            field = gridlib.generator_field(G, planes)
            grid = surface_grid(separable_grid(G, planes, box, args.mesh_res), args.surface)
            choice = generator_level(G, planes, grid)
            who = {} if k is None else {"class": k, "name": name}
            try:
                mesh = extract_mesh(grid, choice.level, keep_components=1, color_field=field)
            except NoSurfaceError as e:
                mesh_stats.append({"seed": s, **who, "level": choice.level, "level_method": choice.method,
                                   "error": str(e)})
                continue
            mesh_stats.append({"seed": s, **who, "surface": args.surface, "level": round(choice.level, 4),
                               "level_method": choice.method,
                               "level_iou": None if choice.iou is None else round(choice.iou, 4),
                               "vertices": len(mesh.vertices), "faces": len(mesh.faces),
                               "watertight": bool(mesh.is_watertight), **shell_stats(mesh)})
            mesh_rows.append(renderer.render(mesh_to_data(mesh), views(cfg, 4)[:4]))
    renderer.release()
    if mesh_rows:
        tile(mesh_rows).save(args.outdir / f"{args.prefix}_mesh.png")

    extra = {} if same_camera is None else {"same_camera_l1": same_camera}
    if args.no_metrics:
        print(json.dumps({"opacity": opacity, "meshes": mesh_stats, **extra}, indent=2))
        return 0
    # One set of features serves KID, FID (as core.metrics computes them: kidN/fidN with N generated
    # images against the first N real ones) and, on labelled data, the nearest-class figures
    # (against every real image).
    t, n = time.time(), args.num_gen
    net = load_inception("cpu")
    real = real_features(dataset, len(dataset), net, progress=False)
    fake, labels = generated_features(G, n, dataset.resolution, net, dataset, progress=False, with_labels=True)
    metrics = {f"kid{n}": kid_from_features(fake, real[:n]), f"fid{n}": fid_from_features(fake, real[:n])}
    card = {"ckpt": args.ckpt, "digest": load_checkpoint(info["source"])["digest"],
            "config": info["config"], "meta": info.get("meta", {}), "metrics": metrics,
            "metrics_seconds": round(time.time() - t, 1), "opacity": opacity, "meshes": mesh_stats, **extra}
    if dataset.label_dim > 0:  # which object each sample is nearest to (core/metrics/nearest.py)
        card["nearest"] = class_figures(real, real_labels(dataset, len(dataset)), fake, labels, class_names(dataset))
    (args.outdir / f"{args.prefix}_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
