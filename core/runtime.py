"""Small runtime helpers shared by the entry points: device choice, seeds and latents, seed ranges."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from .errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UserError(f"unknown device '{name}' (auto, cpu, cuda)")
    return torch.device(name)


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, part)
                seeds.extend(range(int(a), int(b) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"cannot read seeds '{text}': use a list like 0-7,10") from None
    if not seeds:
        raise UserError(f"no seeds in '{text}'")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise UserError(f"seed {bad[0]} is out of range: seeds are 0 to {2**32 - 1}")
    return seeds


def z_from_seed(seed: int, z_dim: int, device=None) -> torch.Tensor:
    """The latent z [1, z_dim] of a seed (NumPy RandomState, as in the StyleGAN family's scripts)."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float().to(device)


def class_label(c_dim: int, class_idx: int | str | None, batch: int = 1, device=None,
                names: list[str] | None = None) -> torch.Tensor | None:
    """One-hot labels [batch, c_dim] for a class (an index, or one of the model's class `names`),
    or None for an unconditional model."""
    if c_dim == 0:
        if class_idx is not None:
            raise UserError("this model is unconditional: drop --class")
        return None
    named = f" or a name ({', '.join(names)})" if names else ""
    if isinstance(class_idx, str):
        text = class_idx.strip()
        if text.lstrip("-").isdigit():
            class_idx = int(text)
        elif names and text.lower() in [n.lower() for n in names]:
            class_idx = [n.lower() for n in names].index(text.lower())
        else:
            raise UserError(f"unknown class '{class_idx}': pass --class between 0 and {c_dim - 1}{named}")
    if class_idx is None or not 0 <= class_idx < c_dim:
        raise UserError(f"this model is class-conditional: pass --class between 0 and {c_dim - 1}{named}")
    c = torch.zeros(batch, c_dim, device=device)
    c[:, class_idx] = 1
    return c


def model_class_label(c_dim: int, class_idx: int | str | None, meta: dict, device=None) -> torch.Tensor | None:
    """class_label for a tool's --class, where no --class means the class the checkpoint suggests
    (meta "viewer_class", what the viewer opens at; said in one line). Without a suggestion a
    class-conditional model still needs --class."""
    names = meta.get("class_names")
    if class_idx is None and c_dim > 0 and isinstance(meta.get("viewer_class"), int) \
            and 0 <= meta["viewer_class"] < c_dim:
        class_idx = meta["viewer_class"]
        name = f" ({names[class_idx]})" if names and class_idx < len(names) else ""
        print(f"class: {class_idx}{name}, the one the checkpoint suggests (pass --class to choose another)")
    return class_label(c_dim, class_idx, device=device, names=names)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable of /proc/meminfo), or None."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(need: int, what: str, flag: str) -> None:
    """Refuse (one line) work estimated to need more memory than the machine has available, unless
    the user passed `flag`."""
    have = available_memory()
    if have is not None and need > 0.9 * have:
        raise UserError(f"{what} needs about {need / 2**30:.1f} GiB of memory and {have / 2**30:.1f} GiB is "
                        f"available: use less, or pass {flag} to try anyway")


def finite_float(option: str):
    """An argparse type for `option`: a finite number. A UserError (not argparse's usage text) so
    that the entry point prints one line."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"{option} '{text}' is not a number") from None
        if not np.isfinite(value):
            raise UserError(f"{option} '{text}' is not a finite number")
        return value
    return parse


def add_model_options(p: argparse.ArgumentParser, with_class: bool = True) -> None:
    """The options every tool that loads a generator shares: --ckpt, --device, --trunc, --rand-init-seed
    (and --class for tools that sample one class)."""
    p.add_argument("--ckpt", required=True, help="checkpoint file, run folder (newest snapshot), demo (the bundled model) or random:PRESET")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--trunc", type=finite_float("--trunc"), default=1.0, help="truncation psi (1 = none)")
    p.add_argument("--rand-init-seed", type=int, default=0, help="initialisation seed for random:PRESET")
    if with_class:
        p.add_argument("--class", dest="class_idx", default=None,
                       help="class of a conditional model: an index, or a name the model carries (meta class_names)")
