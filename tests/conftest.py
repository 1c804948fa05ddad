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


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny synthetic training set: 3 objects x 4 views at 32^2, without labels."""
    from core.data.synthetic import make_synthetic
    path = tmp_path_factory.mktemp("data") / "synthetic.zip"
    make_synthetic(path, num_objects=3, views=4, res=32, seed=0)
    return str(path)


@pytest.fixture
def tiny_cfg():
    return tiny_config()


def run_g_phase(cfg, G) -> dict[str, float]:
    """One 'Gmain' phase of EpiGRAFLoss for G (frozen random D, 4 random reals and cameras, kimg 0):
    backpropagates into G and returns the phase's stats."""
    from core import cameras as camlib
    from core.training.loss import Batch, EpiGRAFLoss
    from core.training.patches import sample_patches
    from core.training.setup import build_discriminator

    D = build_discriminator(cfg).train().requires_grad_(False)
    b, r = 4, cfg.img_resolution
    cams = camlib.sample_cameras(cfg.camera, b)
    batch = Batch(real=torch.rand(b, 3, r, r) * 2 - 1, real_c=None, real_cams=cams,
                  gen_z=torch.randn(b, cfg.generator.z_dim), gen_c=None, gen_cams=cams,
                  patch=sample_patches(b, r, cfg.train, 0.0))
    return EpiGRAFLoss(G.train(), D, None, cfg).accumulate("Gmain", batch, kimg=0.0)
