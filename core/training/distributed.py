"""Multi-process training with torchrun: process group set-up, gradient averaging, small reductions.

The same code runs as one process (world size 1: every helper is a no-op), on N GPUs (NCCL) or as
N CPU processes (gloo, which is how it is tested). Gradients are averaged by hand after each
phase's backward pass (as StyleGAN2-ADA does), which keeps lazy regularisation simple.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> Dist:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), else single."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(params: list[torch.nn.Parameter], d: Dist) -> None:
    """All-reduce and average the gradients of `params` (one flat buffer)."""
    grads = [p.grad for p in params if p.grad is not None]
    if d.world == 1 or not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def reduce_mean(values: dict[str, float], d: Dist, device) -> dict[str, float]:
    """Average a dict of floats over processes (same keys on every process)."""
    if d.world == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / d.world for k, v in zip(keys, t.tolist())}


def any_flag(flag: bool, d: Dist, device) -> bool:
    """True on every process if it is True on any."""
    if d.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def gather_objects(obj, d: Dist) -> list:
    """Every process's object, in rank order (on every process)."""
    if d.world == 1:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def check_replicas(nets: dict[str, torch.nn.Module], d: Dist) -> None:
    """Raise if the processes' copies of the networks' parameters differ: they start equal and take
    the same averaged steps, so a difference is a bug that would train each process its own model
    while only the first is saved. (Buffers such as G's w_avg follow each process's own batches.)"""
    if d.world == 1:
        return
    mine = {}
    for name, net in nets.items():
        with torch.no_grad():
            flat = torch.cat([p.detach().double().flatten() for p in net.parameters()])
        mine[name] = (flat.sum().item(), flat.abs().sum().item(), (flat * flat).sum().item())
    for rank, theirs in enumerate(gather_objects(mine, d)):
        for name, sums in theirs.items():
            if any(abs(a - b) > 1e-9 * max(1.0, abs(b)) for a, b in zip(sums, mine[name])):
                raise RuntimeError(f"the training processes' copies of {name} differ (process {rank} against "
                                   f"{d.rank}): a bug; the snapshot is not written")


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
