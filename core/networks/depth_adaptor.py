"""3DGP's depth adaptor ("3D generation on ImageNet", ICLR 2023; snap-research/3dgp).

Real depth comes from a monocular estimator: relative, blurry, imperfect. Showing D the renderer's
exact expected depth next to it would let D tell fakes by the depth's style alone, so the fake depth
first passes through a small adaptor that can imitate the estimator's look:

1. Normalisation: expected depth d (sum_i w_i t_i, distances along the ray) is mapped linearly so
   that [near', far] -> [-1, 1], with near' = near + sigmoid(theta) * near_shift_max * (far - near)
   and theta one learned scalar (initialised at -3: near' ~ near + 0.012 (far - near)). Values
   outside [near', far] are not clamped.
2. Three equalised-lr conv layers (5x5, 64 channels, leaky ReLU 0.2 with gain sqrt 2), input 1
   channel, and ONE 1x1 conv head (64 -> 1, linear) shared by all layers: the candidates are
   [normalised depth, head(layer 1), head(layer 2), head(layer 3)].
3. In training each sample takes candidate i with probability p_i = s + i k (k such that the p_i sum
   to 1), s annealed linearly from select_start (1/4: uniform) at kimg 0 to select_end (0.1: p = 0.1,
   0.2, 0.3, 0.4) at select_anneal_kimg. In evaluation the last candidate is used.

The adaptor does not depend on w. It is applied to the fake depth before D; the real depth
(ImageDataset(depth=True), core/data/depth.py) is already in [-1, 1) with larger = farther, the
order in which step 1 maps near' -> -1 and far -> 1.

Every candidate enters the output through a one-hot mask, so every parameter is in the graph in
every step (zero gradients for the candidates not drawn): DistributedDataParallel needs no
find_unused_parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config_3dgp import DepthConfig
from .layers import SQRT2


class EqualizedConv2d(nn.Module):
    """Stride-1 'same' conv with equalised learning rate: y = act(conv(x, W / sqrt(fan_in)) + b).

    Weights are stored N(0, 1) and scaled at run time (as the StyleGAN2 layers of core/networks/layers.py);
    activation 'lrelu' is leaky ReLU 0.2 times sqrt 2, 'linear' is none.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, activation: str = "linear"):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"unknown activation '{activation}' (linear, lrelu)")
        if kernel % 2 != 1:
            raise ValueError(f"the kernel size must be odd for 'same' padding, got {kernel}")
        self.kernel, self.activation = kernel, activation
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, (self.weight * self.weight_gain).to(x.dtype), self.bias.to(x.dtype), padding=self.kernel // 2)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2) * SQRT2
        return x


def selection_probabilities(kimg: float, num: int, start: float = 0.25, end: float = 0.1,
                            anneal_kimg: float = 10000.0) -> torch.Tensor:
    """[num] float64: p_i = s + i k with s linear from `start` (kimg 0) to `end` (anneal_kimg) and
    k = (1 - num s) / (num (num - 1) / 2), so that the p_i sum to 1."""
    if num == 1:
        return torch.ones(1, dtype=torch.float64)
    t = min(max(float(kimg) / anneal_kimg, 0.0), 1.0) if anneal_kimg > 0 else 1.0
    s = start + (end - start) * t
    k = (1 - num * s) / (num * (num - 1) / 2)
    return s + k * torch.arange(num, dtype=torch.float64)


def fake_expected_depth(depth_raw: torch.Tensor, opacity: torch.Tensor, far: float | torch.Tensor) -> torch.Tensor:
    """The renderer's sum(w_i t_i) with the background at the far bound: depth_raw + (1 - opacity) far.

    G.render's `depth_raw` and `opacity` [B, 1, H, W] -> the expected depth of the scene in front of an
    opaque far plane, as the real depth maps have it (their background is the far end). With
    render.far_opaque the last interval already absorbs what is left, opacity is ~1 and this is
    depth_raw. far: a float or one value per sample [B].
    """
    if isinstance(far, torch.Tensor):
        far = far.to(depth_raw.device, depth_raw.dtype).reshape(-1, 1, 1, 1)
    return depth_raw + (1 - opacity) * far


class DepthAdaptor(nn.Module):
    """Fake expected depth [B, 1, H, W] -> D's depth channel [B, 1, H, W] (see the module docstring).

    Parameters: `theta` (the near-shift scalar), `layers` (EqualizedConv2d list), `head` (one 1x1 conv).
    """

    def __init__(self, cfg: DepthConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DepthConfig()
        n = cfg.layers + 1
        for name in ("select_start", "select_end"):
            s = getattr(cfg, name)
            if not 0 <= s <= 1 / n + 1e-9:
                raise ValueError(f"depth.{name} must be in [0, 1/{n}] for {n} candidates, got {s}")
        if not 0 <= cfg.near_shift_max < 1:
            raise ValueError(f"depth.near_shift_max must be in [0, 1), got {cfg.near_shift_max}")
        self.theta = nn.Parameter(torch.tensor(float(cfg.near_shift_init)))
        dims = [1] + [cfg.channels] * cfg.layers
        self.layers = nn.ModuleList(EqualizedConv2d(a, b, cfg.kernel, "lrelu") for a, b in zip(dims[:-1], dims[1:]))
        self.head = EqualizedConv2d(cfg.channels, 1, 1, "linear") if cfg.layers > 0 else None

    @property
    def num_candidates(self) -> int:
        return len(self.layers) + 1

    @staticmethod
    def _per_sample(v: float | torch.Tensor, ref: torch.Tensor) -> torch.Tensor | float:
        """A float, or a tensor of one value per sample ([B] or [B, 1, ...]) -> broadcastable to [B, 1, H, W]."""
        if isinstance(v, torch.Tensor):
            return v.to(ref.device, ref.dtype).reshape(-1, 1, 1, 1)
        return float(v)

    def near_shifted(self, near: float | torch.Tensor, far: float | torch.Tensor) -> torch.Tensor:
        """near' = near + sigmoid(theta) * near_shift_max * (far - near) (differentiable in theta)."""
        return near + torch.sigmoid(self.theta) * self.cfg.near_shift_max * (far - near)

    def normalize(self, depth: torch.Tensor, near: float | torch.Tensor, far: float | torch.Tensor) -> torch.Tensor:
        """Expected depth [B, 1, H, W] -> linear map with near' -> -1 and far -> 1 (not clamped).

        near, far: floats or one value per sample (a camera batch's `near`, `far` [B])."""
        near, far = self._per_sample(near, depth), self._per_sample(far, depth)
        near_p = self.near_shifted(near, far)
        return (depth - near_p) / (far - near_p) * 2 - 1

    def candidates(self, depth_norm: torch.Tensor) -> list[torch.Tensor]:
        """Normalised depth [B, 1, H, W] -> [it, head(layer 1), ..., head(layer L)], each [B, 1, H, W]."""
        out, x = [depth_norm], depth_norm
        for layer in self.layers:
            x = layer(x)
            out.append(self.head(x))
        return out

    def probabilities(self, kimg: float) -> torch.Tensor:
        """[num_candidates] float64 selection probabilities at training progress `kimg`."""
        c = self.cfg
        return selection_probabilities(kimg, self.num_candidates, c.select_start, c.select_end, c.select_anneal_kimg)

    def select(self, batch: int, kimg: float, generator: torch.Generator | None = None,
               device: torch.device | None = None) -> torch.Tensor:
        """[batch] int64 candidate indices, drawn independently per sample with probabilities(kimg)
        (from `generator` if given, on the generator's device, else from torch's global RNG)."""
        gdev = generator.device if generator is not None else device
        p = self.probabilities(kimg).to(gdev)
        return torch.multinomial(p, batch, replacement=True, generator=generator).to(device)

    def forward(self, depth: torch.Tensor, near: float | torch.Tensor, far: float | torch.Tensor,
                kimg: float | None = None, generator: torch.Generator | None = None,
                return_index: bool = False):
        """Expected depth [B, 1, H, W] (distances along the ray) -> adapted depth [B, 1, H, W].

        In training mode (`self.training`) each sample takes a random candidate (needs `kimg`; draws
        from `generator` when given); in eval mode the last candidate. With return_index, also the
        chosen indices [B].
        """
        if depth.dim() != 4 or depth.shape[1] != 1:
            raise ValueError(f"depth must be [B, 1, H, W], got {tuple(depth.shape)}")
        cands = torch.stack(self.candidates(self.normalize(depth, near, far)), dim=1)  # [B, n, 1, H, W]
        b, n = cands.shape[:2]
        if self.training:
            if kimg is None:
                raise ValueError("DepthAdaptor in training mode needs kimg (the selection probabilities anneal)")
            idx = self.select(b, kimg, generator, depth.device)
        else:
            idx = torch.full((b,), n - 1, dtype=torch.int64, device=depth.device)
        mask = F.one_hot(idx, n).to(cands.dtype)[:, :, None, None, None]  # keeps every candidate in the graph
        out = (cands * mask).sum(dim=1)
        return (out, idx) if return_index else out
