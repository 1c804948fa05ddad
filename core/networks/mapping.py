"""Mapping network z (+ label c) -> w, with the running mean of w for truncation."""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import FullyConnected, normalize_2nd_moment


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_layers: int = 2, lr_mult: float = 0.01,
                 w_avg_beta: float = 0.998, hidden: int = 0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.w_avg_beta = z_dim, c_dim, w_dim, w_avg_beta
        self.embed = FullyConnected(c_dim, w_dim) if c_dim > 0 else None
        in_dim = z_dim + (w_dim if c_dim > 0 else 0)
        dims = [in_dim] + [hidden or w_dim] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(FullyConnected(dims[i], dims[i + 1], "lrelu", lr_mult) for i in range(num_layers))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                update_w_avg: bool = False) -> torch.Tensor:
        """z [B, z_dim], c [B, c_dim] or None -> w [B, w_dim] (truncated towards w_avg by psi)."""
        x = normalize_2nd_moment(z.to(self.w_avg.dtype))
        if self.c_dim > 0:
            if c is None or c.shape[-1] != self.c_dim:
                raise ValueError(f"mapping expects a label c of {self.c_dim} values, got "
                                 f"{None if c is None else tuple(c.shape)}")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(self.w_avg.dtype)))], dim=1)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1:
            x = self.w_avg.lerp(x, psi)
        return x
