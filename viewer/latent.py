"""Latents in the viewer: a hashable description of "which w" and its resolution through the model.

A `LatentSpec` names the latent shown: one seed, or a position along two or more keyframes
(seeds or saved w latents) blended by lerp in W or slerp in Z (core.latents does the math), plus
truncation psi, class label and the conditioning pose. It is hashable, so renders cache tri-planes
per spec. A seed keyframe of a class-conditional model may carry its own class: interpolating
between keyframes of two classes morphs one object into the other (lerp-w blends the two classes'
w; slerp-z blends z and, linearly, the one-hot labels). Saved latents are .npy files holding w as
[1, w_dim] float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import UserError
from core.fileio import atomic_write
from core.latents import along_keyframes
from core.runtime import class_label, z_from_seed

INTERP_MODES = ("lerp-w", "slerp-z")
"""lerp-w: linear blend of the keyframes' w; slerp-z: spherical blend of their z, then mapping."""


@dataclass(frozen=True)
class Keyframe:
    """A seed (`seed`) or a saved w latent (`path`, read from a .npy file); a seed keyframe's own
    class (`class_idx`; None: the spec's class)."""

    seed: int | None = None
    path: str | None = None
    class_idx: int | None = None

    def label(self) -> str:
        if self.path is not None:
            return f"w {Path(self.path).name}"
        return f"seed {self.seed}" + ("" if self.class_idx is None else f", class {self.class_idx}")


@dataclass(frozen=True)
class LatentSpec:
    """Everything that determines w (and so the tri-planes). Hashable.

    keyframes: one entry = that latent alone; several = a blend at position t in [0, 1].
    pose: (yaw, pitch) of the generator's conditioning camera, or None for the prior's mean.
    """

    keyframes: tuple[Keyframe, ...]
    t: float = 0.0
    mode: str = "lerp-w"
    loop: bool = False
    psi: float = 1.0
    class_idx: int | None = None
    pose: tuple[float, float] | None = None

    @staticmethod
    def from_seed(seed: int, psi: float = 1.0, class_idx: int | None = None) -> LatentSpec:
        return LatentSpec((Keyframe(seed=int(seed)),), psi=psi, class_idx=class_idx)


def save_w(path: str | os.PathLike, w: torch.Tensor) -> None:
    """Write w [1, w_dim] to a .npy file (atomically: temp file + rename)."""
    array = w.detach().float().cpu().numpy().reshape(1, -1)
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def load_w(path: str | os.PathLike, w_dim: int) -> torch.Tensor:
    """Read a saved latent -> w [1, w_dim]; a wrong shape or file is a one-line UserError."""
    try:
        arr = np.load(Path(path), allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"no latent file at '{path}'") from None
    except (ValueError, OSError) as e:
        raise UserError(f"'{path}' is not a .npy latent ({str(e).splitlines()[0][:120]})") from None
    if arr.ndim not in (1, 2) or arr.size != w_dim or not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"'{path}' holds an array of shape {arr.shape} ({arr.dtype}); this model needs "
                        f"w with {w_dim} floats")
    return torch.from_numpy(arr.astype(np.float32).reshape(1, w_dim))


def keyframe_at(spec: LatentSpec) -> int | None:
    """The index of the keyframe that position t lies exactly on, else None (segments of equal length)."""
    n = len(spec.keyframes)
    if n == 1:
        return 0
    segments = n if spec.loop else n - 1
    x = min(max(spec.t, 0.0), 1.0) * segments
    return int(round(x)) % n if abs(x - round(x)) < 1e-9 else None


class LatentResolver:
    """Turns a LatentSpec into w [1, w_dim] for one model (small cache of the keyframes' z and w)."""

    def __init__(self, G: torch.nn.Module, device: torch.device | str = "cpu"):
        self.G = G
        self.device = torch.device(device)
        self._files: dict[str, tuple[int | None, torch.Tensor]] = {}  # path -> (mtime, w)

    def _c(self, spec: LatentSpec, key: Keyframe | None = None) -> torch.Tensor | None:
        """The one-hot label of a keyframe: its own class, else the spec's."""
        k = key.class_idx if key is not None and key.class_idx is not None else spec.class_idx
        return class_label(self.G.cfg.generator.c_dim, k, device=self.device)

    def _pose(self, spec: LatentSpec) -> torch.Tensor | None:
        return None if spec.pose is None else torch.tensor([spec.pose], dtype=torch.float32, device=self.device)

    def z(self, key: Keyframe) -> torch.Tensor:
        """z [1, z_dim] of a seed keyframe."""
        if key.seed is None:
            raise UserError(f"{key.label()} is a saved w latent: it has no z (use lerp in W)")
        return z_from_seed(key.seed, self.G.cfg.generator.z_dim, self.device)

    def w_of(self, key: Keyframe, spec: LatentSpec) -> torch.Tensor:
        """w [1, w_dim] of one keyframe (saved latents are used as they are: psi does not apply)."""
        if key.path is not None:
            try:
                stamp = os.stat(key.path).st_mtime_ns  # a file saved again under the same name is re-read
            except OSError:
                stamp = None
            if self._files.get(key.path, (None, None))[0] != stamp or stamp is None:
                self._files[key.path] = (stamp, load_w(key.path, self.G.cfg.generator.w_dim).to(self.device))
            return self._files[key.path][1]
        return self.G.mapping(self.z(key), self._c(spec, key), psi=spec.psi, pose=self._pose(spec))

    @torch.no_grad()
    def resolve(self, spec: LatentSpec) -> torch.Tensor:
        """w [1, w_dim] of a spec; slerp-z falls back to a UserError when a keyframe has no z."""
        if not spec.keyframes:
            raise UserError("no keyframes: add a seed or load a latent")
        exact = keyframe_at(spec)
        if exact is not None:  # on a keyframe: that latent exactly, not a blend with weight 0
            spec = LatentSpec((spec.keyframes[exact],), 0.0, spec.mode, False, spec.psi, spec.class_idx, spec.pose)
        if len(spec.keyframes) == 1 or spec.mode == "lerp-w":
            ws = [self.w_of(k, spec) for k in spec.keyframes]
            return along_keyframes(ws, spec.t, "lerp", loop=spec.loop)
        if spec.mode != "slerp-z":
            raise UserError(f"unknown interpolation mode '{spec.mode}' ({', '.join(INTERP_MODES)})")
        zs = [self.z(k) for k in spec.keyframes]
        z = along_keyframes(zs, spec.t, "slerp", loop=spec.loop)
        c = None
        if self.G.cfg.generator.c_dim > 0:  # the keyframes' labels, blended linearly
            c = along_keyframes([self._c(spec, k) for k in spec.keyframes], spec.t, "lerp", loop=spec.loop)
        return self.G.mapping(z, c, psi=spec.psi, pose=self._pose(spec))
