"""An endless, resumable data order: per-epoch permutations seeded by (seed, epoch).

Sample number n of the global stream (counted over all processes) is determined by n alone, so a
run resumed at cur_nimg reads exactly the images it would have read without the interruption,
whatever the number of data-loading workers. Process `rank` of `world` takes samples rank, rank +
world, ...
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    def __init__(self, size: int, seed: int = 0, start: int = 0, rank: int = 0, world: int = 1):
        if size <= 0:
            raise ValueError("empty dataset")
        self.size, self.seed, self.start, self.rank, self.world = size, seed, start, rank, world

    def _perm(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[int]:
        n = self.start + self.rank
        epoch, perm = -1, None
        while True:
            e, pos = divmod(n, self.size)
            if e != epoch:
                epoch, perm = e, self._perm(e)
            yield int(perm[pos])
            n += self.world
