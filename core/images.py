"""Turning renders into pictures: [-1, 1] images and depth maps to uint8, grids, PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_to_uint8(img: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> [H, W, 3] uint8."""
    x = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).numpy()


def depth_to_uint8(depth: torch.Tensor, near: float, far: float) -> np.ndarray:
    """[1, H, W] depth -> [H, W, 3] uint8 grey, near = white, far = black."""
    d = ((far - depth.detach().float().cpu()[0]) / max(far - near, 1e-8)).clamp(0, 1)
    g = (d * 255).round().to(torch.uint8).numpy()
    return np.repeat(g[..., None], 3, axis=-1)


def make_grid(images: list[np.ndarray], cols: int | None = None, pad: int = 0) -> np.ndarray:
    """Tile equally sized [H, W, 3] images row-major into one picture."""
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w, c = images[0].shape
    out = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        r, q = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = im
    return out


def save_png(array: np.ndarray, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
