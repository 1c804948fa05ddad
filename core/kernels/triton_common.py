"""What the Triton kernels share: block sizes, host-side argument preparation and the device helpers
(point loads, bilinear taps of channels-last planes, the tri-plane mean, the decoder MLP, the
density and opacity activations, one compositing step). Imports triton; reached only through
`core.kernels.ops` when a call is dispatched to Triton.

Layout: the planes are read channels-last ([B, 3, H, W, C], one contiguous C-vector per texel) so
each bilinear tap is one contiguous read; every kernel accumulates in fp32 whatever the planes'
dtype. Shapes are padded to powers of two inside the kernels (masked loads), so any C and MLP width
work. The decoder MLP runs on tl.dot with ieee fp32 precision (no TF32), the output layer padded
from 4 to 16 columns.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from . import reference

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
BLOCK_POINTS = 16 if INTERPRET else 64
BLOCK_RAYS = 16 if INTERPRET else 64
OUT_PAD = 16  # the decoder's 4 outputs padded for tl.dot


def p2(n: int, lo: int = 1) -> int:
    """The next power of two >= n (and >= lo): a block size covering n."""
    return max(lo, triton.next_power_of_2(int(n)))


def channels_last(planes: torch.Tensor) -> torch.Tensor:
    """[B, 3, C, H, W] -> contiguous [B, 3, H, W, C] (fp64 is computed in fp32).

    The same table the reference gathers from (`reference.plane_table`), so planes without autograd
    (the viewer's cached planes, rendered in many chunks) are permuted once, not once per call.
    """
    b, k, c, h, w = planes.shape
    table = reference.plane_table(planes).reshape(b, k, h, w, c)
    return table.float().contiguous() if planes.dtype == torch.float64 else table.contiguous()


def mlp_args(params, device):
    """The decoder's (w0, b0, w1, b1) as contiguous fp32 on `device`, and its hidden width. A folded
    first layer (w0 None, `reference.fold_first_layer`) becomes the identity: the kernels gain nothing
    from folding, but compute the same."""
    if params[0] is None:
        params = (torch.eye(params[1].shape[0]), *params[1:])
    w0, b0, w1, b1 = (p.detach().to(device=device, dtype=torch.float32).contiguous() for p in params)
    return w0, b0, w1, b1, w0.shape[0]


def result_dtype(planes: torch.Tensor) -> torch.dtype:
    """fp64 for fp64 planes (computed in fp32, returned in fp64, like the reference's dtype), else fp32."""
    return torch.float64 if planes.dtype == torch.float64 else torch.float32


# ------------------------------------------------------------------------------------------------
# Device helpers


@triton.jit
def program_block(N, C, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's batch index (grid axis 1; 0 on a 1-D grid), its BLOCK item offsets along
    grid axis 0 with their mask (< N), and the channel offsets with their mask (< C)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    offs_c = tl.arange(0, BLOCK_C)
    return tl.program_id(1), offs, offs < N, offs_c, offs_c < C


@triton.jit
def load_points(pts_ptr, row, mask, scale):
    """Rows of a [*, 3] fp32 point array divided by the cube scale -> x, y, z [BLOCK]."""
    p = pts_ptr + row * 3
    x = tl.load(p, mask=mask, other=0.0) / scale
    y = tl.load(p + 1, mask=mask, other=0.0) / scale
    z = tl.load(p + 2, mask=mask, other=0.0) / scale
    return x, y, z


@triton.jit
def texel_grid(u, v, H, W, EG3D: tl.constexpr):
    """Normalised (u, v) -> corner (x0, y0) int and fractions (ax, ay); far-outside points clamped.
    align_corners=True, or False with EG3D (reference.triplane_sample's lookups)."""
    if EG3D:
        fx = (u + 1.0) * (0.5 * W.to(tl.float32)) - 0.5
        fy = (v + 1.0) * (0.5 * H.to(tl.float32)) - 0.5
    else:
        fx = (u + 1.0) * (0.5 * (W - 1).to(tl.float32))
        fy = (v + 1.0) * (0.5 * (H - 1).to(tl.float32))
    fx = tl.minimum(tl.maximum(fx, -2.0), W.to(tl.float32) + 1.0)
    fy = tl.minimum(tl.maximum(fy, -2.0), H.to(tl.float32) + 1.0)
    x0f = tl.floor(fx)
    y0f = tl.floor(fy)
    return x0f.to(tl.int32), y0f.to(tl.int32), fx - x0f, fy - y0f


@triton.jit
def tap(plane_ptr, x, y, H, W, C, offs_c, cmask, mask):
    """Texel (x, y) of a channels-last plane -> [BLOCK, BLOCK_C] fp32, zeros outside."""
    ok = mask & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    idx = (y.to(tl.int64) * W + x) * C
    return tl.load(plane_ptr + idx[:, None] + offs_c[None, :], mask=ok[:, None] & cmask[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def bilinear(plane_ptr, u, v, H, W, C, offs_c, cmask, mask, EG3D: tl.constexpr):
    x0, y0, ax, ay = texel_grid(u, v, H, W, EG3D)
    v00 = tap(plane_ptr, x0, y0, H, W, C, offs_c, cmask, mask)
    v10 = tap(plane_ptr, x0 + 1, y0, H, W, C, offs_c, cmask, mask)
    v01 = tap(plane_ptr, x0, y0 + 1, H, W, C, offs_c, cmask, mask)
    v11 = tap(plane_ptr, x0 + 1, y0 + 1, H, W, C, offs_c, cmask, mask)
    ax = ax[:, None]
    ay = ay[:, None]
    return (v00 * (1 - ax) + v10 * ax) * (1 - ay) + (v01 * (1 - ax) + v11 * ax) * ay


@triton.jit
def triplane(planes_ptr, b, x, y, z, H, W, C, offs_c, cmask, mask, EG3D: tl.constexpr):
    """Mean of the three planes' bilinear features at normalised (x, y, z): [BLOCK, BLOCK_C] fp32.
    Planes xy, xz, yz (align_corners=True), or with EG3D xy, xz, zx (align_corners=False)."""
    plane = H.to(tl.int64) * W * C
    base = planes_ptr + b.to(tl.int64) * 3 * plane
    f = bilinear(base, x, y, H, W, C, offs_c, cmask, mask, EG3D)
    f += bilinear(base + plane, x, z, H, W, C, offs_c, cmask, mask, EG3D)
    if EG3D:
        f += bilinear(base + 2 * plane, z, x, H, W, C, offs_c, cmask, mask, EG3D)
    else:
        f += bilinear(base + 2 * plane, y, z, H, W, C, offs_c, cmask, mask, EG3D)
    return f * (1.0 / 3.0)


@triton.jit
def mlp_weights(w0_ptr, b0_ptr, w1_ptr, b1_ptr, C, HD, offs_c, cmask, BLOCK_H: tl.constexpr,
                OUT_PAD: tl.constexpr):
    """Load the decoder (row-major w0 [HD, C], w1 [4, HD]) transposed and zero-padded, once per program."""
    offs_h = tl.arange(0, BLOCK_H)
    hmask = offs_h < HD
    w0t = tl.load(w0_ptr + offs_h[None, :] * C + offs_c[:, None], mask=cmask[:, None] & hmask[None, :], other=0.0)
    b0 = tl.load(b0_ptr + offs_h, mask=hmask, other=0.0)
    offs_o = tl.arange(0, OUT_PAD)
    omask = offs_o < 4
    w1t = tl.load(w1_ptr + offs_o[None, :] * HD + offs_h[:, None], mask=hmask[:, None] & omask[None, :], other=0.0)
    b1 = tl.load(b1_ptr + offs_o, mask=omask, other=0.0)
    return w0t, b0, w1t, b1, offs_o


@triton.jit
def mlp(feats, w0t, b0, w1t, b1):
    """feats [BLOCK, BLOCK_C] -> raw [BLOCK, OUT_PAD] (columns 0..3 used): lrelu(f w0^T + b0) w1^T + b1."""
    hidden = tl.dot(feats, w0t, input_precision="ieee") + b0[None, :]
    hidden = tl.where(hidden >= 0, hidden, hidden * 0.2)  # reference.LRELU_SLOPE
    return tl.dot(hidden, w1t, input_precision="ieee") + b1[None, :]


@triton.jit
def column(x, offs, k):
    """Column k of a [BLOCK, N] block -> [BLOCK]."""
    return tl.sum(tl.where(offs[None, :] == k, x, 0.0), axis=1)


@triton.jit
def softplus(x):
    z = tl.exp(-tl.abs(x))
    return tl.maximum(x, 0.0) + tl.where(z < 1e-4, z * (1.0 - 0.5 * z), tl.log(1.0 + z))


@triton.jit
def alpha(tau):
    """1 - exp(-tau), accurate for small tau (Triton has no expm1)."""
    return tl.where(tau < 1e-3, tau * (1.0 - tau * (0.5 - tau * (1.0 / 6.0))), 1.0 - tl.exp(-tau))


@triton.jit
def sample_interval(t_ptr, rows, s, S, mask, last_delta):
    """Sample s of each ray (rows = ray * S): its depth t_s and interval t_{s+1} - t_s (last_delta
    after the last sample), in fp32, and whether a sample follows it."""
    ts = tl.load(t_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
    has_next = (tl.zeros_like(rows) + s + 1) < S
    tn = tl.load(t_ptr + rows + s + 1, mask=mask & has_next, other=0.0).to(tl.float32)
    return ts, tl.where(has_next, tn - ts, last_delta), has_next
