"""Feature collection for FID / KID: generated images, real images (cached), and `compute_metrics`.

Metric names: `fid` or `kid` followed by N, with an optional `k` (x1000): fid2k, kid50k, fid8;
`nfsN` (e.g. nfs256): 3DGP's non-flatness score of N renders from the mean camera (core/metrics/nfs.py;
no feature network, no real images).
N real images: the first N of a seeded permutation of the dataset (all of it when N >= len).
N generated images (or `num_gen`): z ~ N(0, I) and cameras from the model's prior, drawn up front
from one seeded torch.Generator (so the set does not depend on the batch size), class labels drawn
from dataset items, rendered deterministically at the dataset's resolution. A model with 3DGP
cameras renders from `G.camera_params(z, c, prior)` (its learned camera distribution), and NFS
renders from its mean camera.

Real features are cached in `cache_dir` (default ~/.cache/epigraf-studio/metrics) per dataset
fingerprint (absolute path + every file's size and mtime), length, mirroring, resolution and
permutation seed. The file holds the features of the first K permuted images; a later call for
N <= K reads a prefix, N > K extracts only the missing images and rewrites the file (atomically).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..cameras import Cameras, params_to_cameras, sample_cameras, sample_prior
from ..errors import UserError
from ..fileio import atomic_write
from ..networks.eg3d import camera_label
from .features import FEATURE_DIM, images_to_uint8, load_inception
from .fid_kid import fid_from_features, kid_from_features
from .nfs import compute_nfs

FeatureNet = Callable[[torch.Tensor], torch.Tensor]  # uint8 [B, 3, H, W] -> [B, 2048]
_METRIC_RE = re.compile(r"^(fid|kid|nfs)(\d+)(k?)$")
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/epigraf-studio/metrics, else ~/.cache/epigraf-studio/metrics."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "epigraf-studio" / "metrics"


def parse_metrics(metrics: str | list[str]) -> list[tuple[str, str, int]]:
    """'fid2k,kid50k,nfs256' or ['fid8'] -> [(name, 'fid' | 'kid' | 'nfs', N)]; unknown names are a UserError."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    out = []
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        m = _METRIC_RE.match(name)
        if not m or int(m.group(2)) * (1000 if m.group(3) else 1) < 2:
            raise UserError(f"unknown metric '{name}': use fid, kid or nfs followed by a count of at least 2, "
                            f"e.g. fid2k, kid2k, fid50k, kid50k, fid500, nfs256")
        out.append((name, m.group(1), int(m.group(2)) * (1000 if m.group(3) else 1)))
    if not out:
        raise UserError("no metrics asked for: e.g. --metrics fid2k,kid2k")
    return out


def dataset_fingerprint(dataset: Any) -> str | None:
    """SHA-256 over the dataset's absolute path and each file's relative path, size and mtime;
    None when the dataset object has no `path` (then nothing is cached)."""
    path = getattr(dataset, "path", None)
    if path is None:
        return None
    p = Path(path).resolve()
    if not p.exists():
        return None
    h = hashlib.sha256(str(p).encode())
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        st = f.stat()
        h.update(f"\0{f.relative_to(p) if f != p else ''}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _cache_file(dataset: Any, cache_dir: Path, seed: int) -> Path | None:
    fp = dataset_fingerprint(dataset)
    if fp is None:
        return None
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(getattr(dataset, "name", "dataset")))[:48] or "dataset"
    mirror = int(bool(getattr(dataset, "mirror", False)))
    return cache_dir / f"{name}-{fp}-n{len(dataset)}-m{mirror}-r{dataset.resolution}-s{seed}-v{CACHE_VERSION}.npy"


def _save_atomic(array: np.ndarray, path: Path) -> None:
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def _load_cache(path: Path | None) -> np.ndarray:
    """Cached features [K, 2048], or an empty [0, 2048] array when absent or unreadable."""
    empty = np.zeros((0, FEATURE_DIM), np.float32)
    if path is None or not path.is_file():
        return empty
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return empty  # a damaged cache is rebuilt, never trusted
    return feats if feats.ndim == 2 and feats.shape[1] == FEATURE_DIM and feats.dtype == np.float32 else empty


@torch.no_grad()
def real_features(dataset: Any, n: int, net: FeatureNet, batch: int = 16, cache_dir: str | Path | None = None,
                  seed: int = 0, progress: bool = True) -> np.ndarray:
    """Features [min(n, len), 2048] of the first n images of a seeded permutation, via the cache."""
    n = min(n, len(dataset))
    cache = _cache_file(dataset, Path(cache_dir) if cache_dir else default_cache_dir(), seed)
    feats = _load_cache(cache)
    if feats.shape[0] >= n:
        return feats[:n]
    order = np.random.RandomState(seed).permutation(len(dataset))[feats.shape[0]:n]
    parts = [feats]
    bar = tqdm(total=len(order), desc="real images", unit="img", file=sys.stderr, disable=not progress)
    for i in range(0, len(order), batch):
        imgs = torch.stack([torch.as_tensor(dataset[int(j)]["image"]) for j in order[i:i + batch]])
        if imgs.dtype != torch.uint8 or imgs.ndim != 4 or imgs.shape[1] != 3:
            raise UserError(f"dataset images must be uint8 [3, R, R], got {imgs.dtype} {tuple(imgs.shape[1:])}")
        parts.append(net(imgs).cpu().numpy().astype(np.float32))
        bar.update(len(imgs))
    bar.close()
    feats = np.concatenate(parts)
    if cache is not None:
        _save_atomic(feats, cache)
    return feats


def _camera_params_model(G: torch.nn.Module) -> bool:
    """Whether G renders 3DGP cameras (a learned distribution, or a prior with a field of view and look-at
    per camera): its images are then rendered from `G.camera_params`, its NFS from its mean camera."""
    cam = G.cfg.camera
    return (getattr(G, "camera_gen", None) is not None or cam.fov_dist != "fixed"
            or cam.lookat_dist != "fixed")


def mean_cameras(G: torch.nn.Module) -> Cameras | None:
    """The mean camera of a model with 3DGP cameras (`G.mean_camera_params`: the average of its learned
    cameras), where NFS renders it from; None for EpiGRAF's fixed cameras (G.default_cameras)."""
    if not _camera_params_model(G) or not hasattr(G, "mean_camera_params"):
        return None
    return params_to_cameras(G.mean_camera_params(), G.cfg.camera)


def _label_of(dataset: Any, i: int) -> torch.Tensor:
    get = getattr(dataset, "get_label", None)
    return torch.as_tensor(get(i) if callable(get) else dataset[i]["label"], dtype=torch.float32)


@torch.no_grad()
def generated_features(G: torch.nn.Module, n: int, resolution: int, net: FeatureNet, dataset: Any = None,
                       batch: int = 16, psi: float = 1.0, seed: int = 0, progress: bool = True,
                       with_labels: bool = False, skip_empty: bool = False
                       ) -> np.ndarray | tuple[np.ndarray, torch.Tensor | None]:
    """Features [n, 2048] of n images rendered by G (deterministic sampling) at `resolution`;
    with_labels: also the class labels [n, c_dim] they were generated with (None if unconditional).
    skip_empty: render with empty-space skipping (faster); off by default, so that the numbers
    are those of the dense sampler the model was trained with and the reference evaluates."""
    cfg = G.cfg
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.generator.z_dim, generator=gen)
    learned = _camera_params_model(G)
    # 3DGP models: the prior's CameraParams, mapped per batch through the camera generator below
    cams = sample_prior(cfg.camera, n, generator=gen) if learned else sample_cameras(cfg.camera, n, generator=gen)
    labels = None
    if cfg.generator.c_dim > 0:
        label_dim = getattr(dataset, "label_dim", 0) if dataset is not None else 0
        if label_dim != cfg.generator.c_dim:
            raise UserError(f"the model is class-conditional with {cfg.generator.c_dim} label values but the "
                            f"dataset has {label_dim}: evaluate it on the dataset it was trained on")
        idx = torch.randint(0, len(dataset), (n,), generator=gen)
        table = {int(i): _label_of(dataset, int(i)) for i in idx.unique()}
        labels = torch.stack([table[int(i)] for i in idx])
    out = []
    bar = tqdm(total=n, desc="generated images", unit="img", file=sys.stderr, disable=not progress)
    for i in range(0, n, batch):
        c = labels[i:i + batch].to(device) if labels is not None else None
        if learned:  # the model's (learned) camera distribution: a field of view and a look-at per camera
            params = G.camera_params(z[i:i + batch].to(device), c, prior=cams[i:i + batch].to(device))
            cams_b = params_to_cameras(params, cfg.camera)
        else:
            cams_b = cams[i:i + batch].to(device)
        if cfg.generator.family == "eg3d":  # EG3D evaluates G conditioned on the camera it renders from
            c = camera_label(cams_b)
        w = G.mapping(z[i:i + batch].to(device), c, psi=psi)
        img = G.render(G.planes(w), cams_b, resolution=resolution, deterministic=True,
                       w=w, skip_empty=skip_empty)["image"]
        out.append(net(images_to_uint8(img)).cpu().numpy().astype(np.float32))
        bar.update(img.shape[0])
    bar.close()
    feats = np.concatenate(out)
    return (feats, labels) if with_labels else feats


def compute_metrics(G: torch.nn.Module, dataset: Any, metrics: str | list[str], device: str | torch.device,
                    num_gen: int | None = None, batch: int = 16, cache_dir: str | Path | None = None,
                    progress: bool = True, *, psi: float = 1.0, seed: int = 0, skip_empty: bool = False,
                    feature_net: FeatureNet | None = None) -> dict[str, float]:
    """FID / KID of G against `dataset` (and NFS of G alone) -> {name: value}; KID is reported x1 (not x1000).

    G is used as it is (pass G_ema in eval mode, on `device`). num_gen overrides the number of
    generated images for every metric (default: each metric's N); the real side always uses the
    metric's N (capped at the dataset size). One set of generated and one of real features serve
    all metrics (prefixes of the largest). Pass a dataset with mirroring off. feature_net replaces
    the Inception network (tests). NFS metrics (nfsN) need no dataset (None is accepted when only
    they are asked for; a conditional G then draws uniform classes) and no Inception network.
    """
    specs = parse_metrics(metrics)
    if num_gen is not None and num_gen < 2:
        raise UserError("num_gen must be at least 2")
    nfs_cams = mean_cameras(G) if any(kind == "nfs" for _, kind, _ in specs) else None
    results = {name: compute_nfs(G, n=num_gen or n, batch=batch, psi=psi, seed=seed, dataset=dataset,
                                 cameras=nfs_cams, progress=progress)
               for name, kind, n in specs if kind == "nfs"}
    specs = [s for s in specs if s[1] != "nfs"]
    if not specs:
        return results
    if dataset is None:
        raise UserError("FID/KID need the real images: pass a dataset (--data)")
    net = feature_net if feature_net is not None else load_inception(device)
    n_real = max(n for _, _, n in specs)
    n_gen = num_gen or n_real
    real = real_features(dataset, n_real, net, batch, cache_dir, seed, progress)
    if real.shape[0] < 2:
        raise UserError(f"the dataset has {len(dataset)} image(s): FID/KID need at least 2")
    fake = generated_features(G, n_gen, dataset.resolution, net, dataset, batch, psi, seed, progress,
                              skip_empty=skip_empty)
    for name, kind, n in specs:
        g, r = fake[:num_gen or n], real[:n]
        results[name] = fid_from_features(g, r) if kind == "fid" else kid_from_features(g, r)
    return results
