# Import Triton (when installed) before anything can create an OpenGL/EGL context: importing it
# after Mesa/llvmpipe has loaded its LLVM crashes the process (seen in CI as exit 139).
try:
    import triton  # noqa: F401
except ImportError:
    pass

import pytest
import torch

from core.config import get_preset


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


def tiny_config(**render):
    """A demo-shaped config small enough for float64 finite differences and instant renders."""
    cfg = get_preset("demo")
    g = cfg.generator
    g.z_dim = g.w_dim = 16
    g.plane_res, g.channel_base, g.channel_max, g.decoder_hidden = 16, 256, 16, 16
    cfg.img_resolution = 16
    cfg.render.num_coarse, cfg.render.num_fine = 8, 8
    for k, v in render.items():
        setattr(cfg.render, k, v)
    return cfg


@pytest.fixture
def tiny_cfg():
    return tiny_config()
