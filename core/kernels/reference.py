"""Pure-PyTorch references of the render ops: the ground truth, and the code the renderer runs on CPU.

Nothing here imports Triton. These functions do no argument checking (the public wrappers in
`core.kernels.ops` do) and are differentiable by autograd wherever their inputs are.

Tri-plane lookup. A world point p is divided by cube_scale and projected onto the xy, xz and yz
planes; plane k is indexed by (u, v) = its two coordinates, u along the width and v along the
height, with align_corners=True (u = -1 and u = 1 are the outer texel centres) and zeros outside.
Instead of three grid_sample calls, the four corner texels of each plane are gathered from one
channels-last table [B * 3 * H * W, C] with `embedding_bag(mode="sum", per_sample_weights=...)`:
12 (index, weight) pairs per point, the weights being the bilinear weights / 3 (zero for corners
outside the plane). That is the bilinear formula itself, one fused gather-and-sum, and it measured
faster than grid_sample on CPU (docs/benchmarks.md). Gradients reach the planes (through the
table) and the points (through the weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FAR_DELTA_OPAQUE = 1e10
FAR_DELTA_OPEN = 1e-3
LRELU_SLOPE = 0.2

def channels_last(planes: torch.Tensor) -> torch.Tensor:
    """The same planes [B, 3, C, H, W] (values, shape, autograd) stored channels-last in memory, so that
    `plane_table` of them is a view, not a copy. `TriPlaneGenerator.planes` returns planes stored this
    way at inference: the viewer renders a frame in many chunks from the same cached planes."""
    if is_channels_last(planes):
        return planes
    return planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def is_channels_last(planes: torch.Tensor) -> bool:
    return planes.permute(0, 1, 3, 4, 2).is_contiguous()


def plane_table(planes: torch.Tensor) -> torch.Tensor:
    """planes [B, 3, C, H, W] -> channels-last feature table [B * 3 * H * W, C]: a view of planes stored
    channels-last (`channels_last`), else a copy made for this call (no cache is kept here)."""
    b, k, c, h, w = planes.shape
    return planes.permute(0, 1, 3, 4, 2).reshape(b * k * h * w, c)


LOOKUPS = ("epigraf", "eg3d")


def plane_coords(points: torch.Tensor, cube_scale: float, lookup: str = "epigraf") -> torch.Tensor:
    """points [B, N, 3] (world) -> normalised plane coordinates [B, N, 3, 2]: (x, y), (x, z), (y, z);
    with lookup 'eg3d' the third plane reads (z, x), as EG3D's plane axes do."""
    x = points / cube_scale
    third = x[..., 1:] if lookup == "epigraf" else torch.stack([x[..., 2], x[..., 0]], dim=-1)
    return torch.stack([x[..., :2], x[..., 0::2], third], dim=-2)


def triplane_sample(planes: torch.Tensor, points: torch.Tensor, cube_scale: float,
                    lookup: str = "epigraf") -> torch.Tensor:
    """planes [B, 3, C, H, W], points [B, N, 3] -> features [B, N, C], the mean over the three planes.

    lookup 'epigraf': align_corners=True (u = +-1 are the outer texel centres), planes xy, xz, yz;
    'eg3d': align_corners=False (u = +-1 are the outer texel edges, centres at -1 + (2k + 1) / W),
    planes xy, xz, zx. Both read zeros outside the planes.
    Computed in the planes' dtype when it is fp32/fp64; fp16/bf16 planes are sampled in fp32 and
    the result cast back.
    """
    out_dtype = planes.dtype
    if planes.dtype in (torch.float16, torch.bfloat16):
        planes = planes.float()
    points = points.to(planes.dtype)
    b, k, c, h, w = planes.shape
    n = points.shape[1]
    uv = plane_coords(points, cube_scale, lookup)  # [B, N, 3, 2]
    if lookup == "epigraf":
        fx = (uv[..., 0] + 1) * (0.5 * (w - 1))  # [B, N, 3] texel units
        fy = (uv[..., 1] + 1) * (0.5 * (h - 1))
    else:  # align_corners=False
        fx = (uv[..., 0] + 1) * (0.5 * w) - 0.5
        fy = (uv[..., 1] + 1) * (0.5 * h) - 0.5
    x0f, y0f = fx.detach().floor(), fy.detach().floor()
    ax, ay = fx - x0f, fy - y0f  # the gradient to the points flows through these
    # per-axis weights, zero for a corner outside the plane (its index is then clamped to a valid one)
    wx0 = (1 - ax) * ((x0f >= 0) & (x0f <= w - 1))
    wx1 = ax * ((x0f >= -1) & (x0f <= w - 2))
    wy0 = (1 - ay) * ((y0f >= 0) & (y0f <= h - 1)) * (1 / k)  # the mean over planes folded in
    wy1 = ay * ((y0f >= -1) & (y0f <= h - 2)) * (1 / k)
    x0 = x0f.clamp(-1, w - 1).to(torch.int32)
    y0 = y0f.clamp(-1, h - 1).to(torch.int32)
    cx0, cx1 = x0.clamp(min=0), (x0 + 1).clamp(max=w - 1)
    base = torch.arange(0, b * k * h * w, h * w, device=points.device, dtype=torch.int32).reshape(b, 1, k)
    row0 = y0.clamp(min=0) * w + base  # [B, N, 3] first texel of the corner rows in the table
    row1 = (y0 + 1).clamp(max=h - 1) * w + base
    idx = torch.stack([row0 + cx0, row0 + cx1, row1 + cx0, row1 + cx1], dim=-1)  # [B, N, 3, 4]
    wts = torch.stack([wx0 * wy0, wx1 * wy0, wx0 * wy1, wx1 * wy1], dim=-1)
    feats = F.embedding_bag(idx.reshape(b * n, 4 * k), plane_table(planes), mode="sum",
                            per_sample_weights=wts.reshape(b * n, 4 * k))  # [B * N, C]
    return feats.reshape(b, n, c).to(out_dtype)


def decoder_mlp(feats: torch.Tensor, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """feats [..., C] -> raw [..., 4]. params = (w0 [Hd, C], b0 [Hd], w1 [4, Hd], b1 [4]) with the
    equalised-lr gains already folded in (`TriPlaneDecoder.params()`): lrelu(x w0^T + b0) w1^T + b1.
    With w0 None (folded) and no gradient recorded, feats is overwritten (it is scratch by then)."""
    w0, b0, w1, b1 = params
    # w0 None: the first layer is folded into the planes (`fold_first_layer`), feats are x w0^T already
    # in place when no graph is recorded: a fresh output tensor costs more than the activation itself
    recording = torch.is_grad_enabled() and any(p is not None and p.requires_grad for p in (feats, w0, b0))
    if w0 is None:  # folded: feats are a fresh lookup result (query_points), updated in place
        hidden = feats + b0 if recording else feats.add_(b0)
    else:
        hidden = F.linear(feats, w0, b0)
    hidden = F.leaky_relu(hidden, LRELU_SLOPE, inplace=not recording)
    return F.linear(hidden, w1, b1)


def fold_first_layer(planes: torch.Tensor, params: tuple[torch.Tensor, ...]):
    """(planes [B, 3, C, H, W], params) -> (planes [B, 3, Hd, H, W] channels-last, (None, b0, w1, b1)).

    The decoder's first layer is linear before its activation and the tri-plane feature is the mean
    of three bilinear lookups, so w0 commutes with both: lookup(w0 planes) = w0 lookup(planes). Pushing
    every texel through w0 once per latent replaces a C -> Hd product per sample by a wider lookup;
    the result is the same up to float rounding. Inference only."""
    w0, b0, w1, b1 = params
    folded = torch.einsum("bkchw,dc->bkhwd", planes.to(w0.dtype), w0).contiguous().permute(0, 1, 4, 2, 3)
    return folded, (None, b0, w1, b1)


def density(raw_sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """The density activation: softplus(raw + shift)."""
    return F.softplus(raw_sigma + shift)


def query_points(planes: torch.Tensor, points: torch.Tensor, cube_scale: float, params: tuple[torch.Tensor, ...],
                 density_shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """points [B, N, 3] -> rgb [B, N, 3] (raw), sigma [B, N], in fp32 (or fp64 for fp64 inputs)."""
    feats = triplane_sample(planes, points, cube_scale)
    if feats.dtype in (torch.float16, torch.bfloat16):
        feats = feats.float()
    raw = decoder_mlp(feats, tuple(None if p is None else p.to(feats.dtype) for p in params))
    return raw[..., :3], density(raw[..., 3], density_shift)


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far_opaque: bool,
              stop_transmittance: float = 0.0) -> dict[str, torch.Tensor]:
    """Front-to-back compositing: rgb [..., S, C], sigma [..., S] >= 0, t [..., S] ascending ->

    rgb [..., C] (sum of w * c), opacity [...] (sum of w), depth [...] (sum of w * t / opacity, the
    far bound where nothing is hit), depth_raw [...] (sum of w * t), weights [..., S].

    Transmittance is exp(-cumsum(sigma * delta)) (exclusive). The interval after the last sample is
    1e10 long when `far_opaque`, else 1e-3. stop_transmittance > 0 (inference): samples reached with
    a transmittance below it get weight 0 (early ray termination).
    """
    deltas = torch.cat([t[..., 1:] - t[..., :-1], torch.full_like(t[..., :1], far_delta(far_opaque))], dim=-1)
    return composite_deltas(rgb, sigma, t, deltas, stop_transmittance)


def composite_deltas(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, deltas: torch.Tensor,
                     stop_transmittance: float = 0.0) -> dict[str, torch.Tensor]:
    """`composite` with each sample's interval length given (deltas [..., S] >= 0) instead of taken
    from the gaps between depths: the compositing of samples spread over disjoint occupied
    intervals (empty-space skipping), where a sample with delta 0 contributes nothing."""
    tau = sigma * deltas
    acc = torch.cumsum(tau, dim=-1)
    trans = torch.exp(-torch.cat([torch.zeros_like(acc[..., :1]), acc[..., :-1]], dim=-1))
    alpha = -torch.expm1(-tau)
    weights = trans * alpha
    if stop_transmittance > 0:
        weights = torch.where(trans >= stop_transmittance, weights, torch.zeros_like(weights))
    opacity = weights.sum(-1)
    depth_raw = (weights * t).sum(-1)
    out_rgb = (weights[..., None] * rgb).sum(-2)
    return {"rgb": out_rgb, "opacity": opacity, "depth": depth_from(depth_raw, opacity, t),
            "depth_raw": depth_raw, "weights": weights}


def composite_midpoint(rgb: torch.Tensor, raw_sigma: torch.Tensor, t: torch.Tensor,
                       stop_transmittance: float = 0.0) -> dict[str, torch.Tensor]:
    """EG3D's compositing (its MipRayMarcher2): rgb [..., S, C], raw_sigma [..., S] (before the
    density activation, shift included), t [..., S] ascending -> rgb [..., C], opacity, depth,
    depth_raw [...] and weights [..., S - 1].

    The S - 1 intervals between samples carry the averages of their end samples' colour, raw density
    and depth; density = softplus(mean raw), alpha = 1 - exp(-density * interval), transmittance the
    exclusive cumulative product of 1 - alpha + 1e-10; nothing beyond the last sample. depth = sum
    of w * midpoint / opacity (inf where that is undefined) clamped to the range of all depths in t.
    """
    deltas = t[..., 1:] - t[..., :-1]
    c_mid = (rgb[..., 1:, :] + rgb[..., :-1, :]) / 2
    t_mid = (t[..., 1:] + t[..., :-1]) / 2
    alpha = 1 - torch.exp(-F.softplus((raw_sigma[..., 1:] + raw_sigma[..., :-1]) / 2) * deltas)
    shifted = torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha + 1e-10], dim=-1)
    trans = torch.cumprod(shifted, dim=-1)[..., :-1]
    weights = alpha * trans
    if stop_transmittance > 0:
        weights = torch.where(trans >= stop_transmittance, weights, torch.zeros_like(weights))
    opacity = weights.sum(-1)
    depth_raw = (weights * t_mid).sum(-1)
    depth = torch.nan_to_num(depth_raw / opacity, float("inf")).clamp(t.min(), t.max())
    return {"rgb": (weights[..., None] * c_mid).sum(-2), "opacity": opacity, "depth": depth,
            "depth_raw": depth_raw, "weights": weights}


def far_delta(far_opaque: bool) -> float:
    """The length of the interval after a ray's last sample: 1e10 (opaque far plane) or 1e-3."""
    return FAR_DELTA_OPAQUE if far_opaque else FAR_DELTA_OPEN


def depth_from(depth_raw: torch.Tensor, opacity: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Depth normalised by opacity; the last sample's depth (the far bound) where nothing is hit."""
    hit = opacity > 1e-6
    return torch.where(hit, depth_raw / opacity.clamp_min(1e-6), t[..., -1])


def march_rays(planes: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor,
               cube_scale: float, params: tuple[torch.Tensor, ...], density_shift: float, far_opaque: bool,
               stop_transmittance: float = 0.0, deltas: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """origins, dirs [B, R, 3], depths t [B, R, S] ascending -> composite() of the field at o + t d
    (composite_deltas() with deltas [B, R, S] given: empty-space skipping).

    The reference of the fused per-ray kernel: points, query_points, composite.
    """
    b, r, s = t.shape
    pts = origins[:, :, None, :] + dirs[:, :, None, :] * t[..., None]  # [B, R, S, 3]
    rgb, sigma = query_points(planes, pts.reshape(b, r * s, 3), cube_scale, params, density_shift)
    rgb, sigma, t = rgb.reshape(b, r, s, 3), sigma.reshape(b, r, s), t.to(sigma.dtype)
    if deltas is not None:
        return composite_deltas(rgb, sigma, t, deltas.to(sigma.dtype), stop_transmittance)
    return composite(rgb, sigma, t, far_opaque, stop_transmittance)
