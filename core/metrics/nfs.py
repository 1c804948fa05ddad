"""Non-flatness score (NFS; 3DGP, "3D generation on ImageNet", ICLR 2023): how far a generator's
geometry is from a flat billboard. Needs no feature network and no real images.

    NFS = mean over images of exp(entropy of the 64-bin histogram of the image's depth in [near, far])

A scene whose every pixel lies at one depth scores 1; depth spread evenly over all bins scores 64.
`nfsN` (e.g. nfs256) in `--metrics` / `train.metrics` renders N samples.

How the depth is obtained here (`masked_depth`), for N latents rendered from the mean (frontal)
camera of the model's prior (G.default_cameras, or the cameras passed in):

1. rays of the full image (core/render/rays.py) at the model's resolution, and along each ray S
   evenly spaced depths from near to far (`core.render.sampling.stratified`, deterministic;
   S = render.num_coarse + render.num_fine unless given), a uniform grid over the view frustum;
2. the densities there through the generator's own field, `G.query(planes, points)`;
3. "densities below their 50% quantile zeroed": per IMAGE, the q-quantile (q = 0.5, linear
   interpolation as torch.quantile) of the densities of all its R * R * S samples is taken, and
   every sample of that image with a density below it gets density 0 (the faint haze that fills
   an untrained or foggy field stops pulling the depth towards the camera). snap-research/3dgp
   takes the quantile over the whole rendered batch instead, which makes the score depend on the
   batch size; per image it does not;
4. the masked densities are composited with the renderer's own compositing op
   (`core.kernels.composite`, the config's render.far_opaque) and its expected depth is used:
   sum(w t) / sum(w), the far bound where a ray hits nothing (the background is far away, not
   at the camera);
5. the depth is clamped to [near, far] and histogrammed (`nfs_from_depths`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import kernels
from ..cameras import Cameras
from ..errors import UserError
from ..render.rays import make_rays
from ..render.sampling import stratified

NFS_BINS = 64
CUT_QUANTILE = 0.5


def nfs_from_depths(depth: torch.Tensor | np.ndarray, near: float | torch.Tensor, far: float | torch.Tensor,
                    bins: int = NFS_BINS) -> float:
    """Depth maps [N, H, W] (or [N, 1, H, W], [N, P]) -> the mean over images of exp(entropy of the
    `bins`-bin histogram of depth clamped to [near, far]) (natural log; 0 log 0 = 0).

    near/far: numbers or per-image [N]. Bins are equal slices of [near, far]; a depth equal to far
    falls in the last bin (as torch.histc). Range: 1 (every pixel in one bin) to `bins`.
    """
    d = torch.as_tensor(depth).double()
    n = d.shape[0]
    d = d.reshape(n, -1)
    if d.shape[1] == 0 or n == 0:
        raise ValueError("nfs_from_depths needs at least one image with at least one pixel")
    lo = torch.as_tensor(near, dtype=torch.float64).reshape(-1, 1).expand(n, 1)
    hi = torch.as_tensor(far, dtype=torch.float64).reshape(-1, 1).expand(n, 1)
    if not bool((hi > lo).all()):
        raise ValueError("nfs_from_depths needs far > near")
    d = torch.minimum(torch.maximum(d, lo), hi)
    idx = ((d - lo) / (hi - lo) * bins).floor().long().clamp(0, bins - 1)  # [N, P]
    counts = torch.zeros(n, bins, dtype=torch.float64).scatter_add_(1, idx, torch.ones_like(d))
    p = counts / counts.sum(dim=1, keepdim=True)
    entropy = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(dim=1)  # [N]
    return float(entropy.exp().mean())


def quantile_rows(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-quantile of x [B, M] with linear interpolation (torch.quantile's default) -> [B];
    by selection, so rows longer than torch.quantile's 16M-element limit work too."""
    m = x.shape[1]
    pos = q * (m - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    v_lo = torch.kthvalue(x, lo + 1, dim=1).values
    if hi == lo:
        return v_lo
    v_hi = torch.kthvalue(x, hi + 1, dim=1).values
    return v_lo + (v_hi - v_lo) * (pos - lo)


@torch.no_grad()
def masked_depth(G: torch.nn.Module, planes: torch.Tensor, cameras: Cameras, resolution: int,
                 samples: int | None = None, quantile: float = CUT_QUANTILE,
                 chunk_rays: int | None = None) -> torch.Tensor:
    """Expected depth [B, R, R] of the field in `planes` seen from `cameras`, with each image's
    densities below its `quantile` zeroed (steps 1-4 of the module docstring); not clamped."""
    cfg = G.cfg
    rc = cfg.render
    s = samples or (rc.num_coarse + rc.num_fine)
    cams = cameras.to(planes.device, torch.float32)
    b = planes.shape[0]
    origins, dirs = make_rays(cams, resolution)  # [B, R^2, 3]
    rays = origins.shape[1]
    near = cams.near[:, None].expand(b, rays)
    far = cams.far[:, None].expand(b, rays)
    t = stratified(near, far, s, deterministic=True)  # [B, R^2, S]
    step = max(1, (chunk_rays or (1024 if planes.device.type == "cpu" else 65536)) // b)
    sigma = torch.empty_like(t)
    for i in range(0, rays, step):
        pts = origins[:, i:i + step, None] + dirs[:, i:i + step, None] * t[:, i:i + step, :, None]
        _, sg = G.query(planes, pts.reshape(b, -1, 3))
        sigma[:, i:i + step] = sg.reshape(b, -1, s).to(sigma.dtype)
    if quantile > 0:
        cut = quantile_rows(sigma.reshape(b, -1), quantile)  # [B]
        sigma = torch.where(sigma < cut[:, None, None], torch.zeros_like(sigma), sigma)
    out = kernels.composite(sigma[..., None][..., :0], sigma, t, rc.far_opaque, impl=rc.kernel_impl)
    return out["depth"].reshape(b, resolution, resolution)


def _labels(G: torch.nn.Module, n: int, dataset: Any, gen: torch.Generator) -> torch.Tensor | None:
    """Class labels [n, c_dim] for a conditional G: drawn from dataset items when a dataset is given,
    else uniformly random one-hot classes."""
    c_dim = G.cfg.generator.c_dim
    if c_dim == 0:
        return None
    if dataset is not None and len(dataset) > 0:
        if getattr(dataset, "label_dim", 0) != c_dim:
            raise UserError(f"the model is class-conditional with {c_dim} label values but the dataset has "
                            f"{getattr(dataset, 'label_dim', 0)}: evaluate it on the dataset it was trained on")
        idx = torch.randint(0, len(dataset), (n,), generator=gen)
        get = getattr(dataset, "get_label", None)
        return torch.stack([torch.as_tensor(get(int(i)) if callable(get) else dataset[int(i)]["label"]).float()
                            for i in idx])
    return torch.nn.functional.one_hot(torch.randint(0, c_dim, (n,), generator=gen), c_dim).float()


@torch.no_grad()
def compute_nfs(G: torch.nn.Module, cfg: Any = None, n: int = 256, *, resolution: int | None = None,
                batch: int = 8, samples: int | None = None, quantile: float = CUT_QUANTILE, bins: int = NFS_BINS,
                psi: float = 1.0, seed: int = 0, dataset: Any = None, cameras: Cameras | None = None,
                progress: bool = False, return_depths: bool = False) -> float | tuple[float, torch.Tensor]:
    """The NFS of G over n seeded latents rendered from the mean (frontal) camera (module docstring).

    cfg: the model config (default G.cfg); resolution: default cfg.img_resolution (EG3D: its neural
    render's); samples: depths per ray (default num_coarse + num_fine); dataset: where class labels
    of a conditional G are drawn from (else uniform classes); cameras: one camera (or n) to use
    instead of G.default_cameras(), e.g. a learned camera distribution's mean camera. G is used as
    it is (pass G_ema in eval mode). return_depths: also the clamped depths [n, R, R] (CPU).
    """
    cfg = cfg if cfg is not None else G.cfg
    if n < 1 or batch < 1:
        raise UserError(f"NFS needs n >= 1 and batch >= 1, got {n}, {batch}")
    if cfg.generator.family == "eg3d":
        resolution = resolution or cfg.generator.neural_res
    res = resolution or cfg.img_resolution
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.generator.z_dim, generator=gen)
    labels = _labels(G, n, dataset, gen)
    depths, nears, fars = [], [], []
    bar = tqdm(total=n, desc="nfs renders", unit="img", file=sys.stderr, disable=not progress)
    for i in range(0, n, batch):
        b = min(batch, n - i)
        if cameras is None:
            cams = G.default_cameras(b, device)
        else:
            cams = cameras[i:i + b] if len(cameras) == n else cameras[[0] * b]
        c = labels[i:i + b].to(device) if labels is not None else None
        w = G.mapping(z[i:i + b].to(device), c, psi=psi)
        cams = cams.to(device)
        d = masked_depth(G, G.planes(w), cams, res, samples, quantile)
        near, far = cams.near.float().cpu(), cams.far.float().cpu()
        depths.append(torch.minimum(torch.maximum(d.float().cpu(), near[:, None, None]), far[:, None, None]))
        nears.append(near)
        fars.append(far)
        bar.update(b)
    bar.close()
    depth = torch.cat(depths)
    score = nfs_from_depths(depth, torch.cat(nears), torch.cat(fars), bins)
    return (score, depth) if return_depths else score
