"""G.render with empty-space skipping: when it applies, what it costs, how close it is to a dense
192 + 192-sample reference, and that fog (a random model) keeps the dense path."""

import math

import pytest
import torch

import core.networks.generator as generator_module
import core.render.renderer as renderer_module
from core.checkpoint import build_generator, load_generator
from core.networks import plane_cache
from tests.conftest import tiny_config


def _psnr(a, b):
    return 10 * math.log10(4.0 / float(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def demo():
    G, _ = load_generator("demo")
    g = G.cfg.generator
    with torch.no_grad():
        # the duck and a soccer ball without truncation: harder surfaces than the mean latent's
        c = torch.eye(g.c_dim)[[1, 3]]
        w = G.mapping(torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0)), c, psi=1.0)
        planes = G.planes(w)
    return G, planes


@pytest.fixture
def counted(monkeypatch):
    """Counts of occupancy-grid builds and of skipping renders (render_rays calls with a Skip)."""
    counts = {"build": 0, "skip": 0}
    build, render_rays = generator_module.build_for_generator, renderer_module.render_rays

    def counting_build(*a, **k):
        counts["build"] += 1
        return build(*a, **k)

    def counting_render(*a, skip=None, **k):
        counts["skip"] += skip is not None
        return render_rays(*a, skip=skip, **k)
    monkeypatch.setattr(generator_module, "build_for_generator", counting_build)
    monkeypatch.setattr(renderer_module, "render_rays", counting_render)
    plane_cache.clear()
    return counts


def test_demo_skips_and_is_closer_to_the_dense_reference_than_the_dense_path(demo, counted):
    G, planes = demo
    cams = G.default_cameras(2)
    with torch.no_grad():
        ref = G.render(planes, cams, resolution=40, num_coarse=192, num_fine=192, skip_empty=False)
        assert counted["skip"] == 0
        dense = G.render(planes, cams, resolution=40, skip_empty=False)
        fast = G.render(planes, cams, resolution=40)  # the default at inference
    assert counted["skip"] > 0 and counted["build"] == 1
    for k in range(2):
        assert _psnr(fast["image"][k], ref["image"][k]) >= _psnr(dense["image"][k], ref["image"][k])
        assert _psnr(fast["image"][k], ref["image"][k]) > 40
    assert float((fast["opacity"] - ref["opacity"]).abs().mean()) < 5e-3
    hit = ref["opacity"] > 0.5
    assert float((fast["depth"] - ref["depth"])[hit].abs().mean()) < 2e-3


def test_grid_is_built_once_per_planes_and_again_after_an_in_place_change(demo, counted):
    G, planes = demo
    planes = planes.clone()
    cams = G.default_cameras(2)
    with torch.no_grad():
        a = G.render(planes, cams, resolution=16)
        G.render(planes, cams, resolution=24)
        assert counted["build"] == 1
        planes.mul_(0.5)  # same tensor, new contents: the cache must notice
        b = G.render(planes, cams, resolution=16)
    assert counted["build"] == 2
    assert not torch.allclose(a["image"], b["image"])


def test_fog_keeps_the_dense_path_exactly():
    """A freshly initialised model has density everywhere: the probe calls it fog, and the render is
    the dense path's, to the bit (the folded decoder aside, which both share)."""
    cfg = tiny_config()
    G = build_generator(cfg, seed=0).eval()
    G.cfg.generator.density_shift = 2.0  # denser still
    with torch.no_grad():
        planes = G.planes(G.mapping(torch.randn(1, cfg.generator.z_dim)))
        cams = G.default_cameras(1)
        plane_cache.clear()
        grid = G.prepare(planes)
        assert grid.fog and grid.fraction > cfg.render.skip_max_occupied
        a = G.render(planes, cams, resolution=12)
        b = G.render(planes, cams, resolution=12, skip_empty=False)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["depth"], b["depth"])


def test_training_and_noisy_renders_never_skip(demo, counted):
    G, planes = demo
    cams = G.default_cameras(2)
    p = planes.detach().clone().requires_grad_(True)
    out = G.render(p, cams, resolution=8)  # gradients recorded: training
    out["image"].sum().backward()
    assert p.grad is not None and counted["skip"] == 0
    with torch.no_grad():
        G.render(planes, cams, resolution=8, density_noise=1.0)
        G.render(planes, cams, resolution=8, deterministic=False)
        G.render(planes, cams, resolution=8, skip_empty=False)
    assert counted["skip"] == 0 and counted["build"] == 0


def test_config_switch_turns_it_off(demo, counted):
    G, planes = demo
    G.cfg.render.skip_empty = False
    try:
        with torch.no_grad():
            G.render(planes, G.default_cameras(2), resolution=8)
    finally:
        G.cfg.render.skip_empty = True
    assert counted["skip"] == 0


def test_patches_render_the_crop_of_the_full_skipped_image(demo):
    """The skipping path is per ray: a patch is exactly the crop of the full render, as for the dense path."""
    from core.render.rays import Patch
    G, planes = demo
    cams = G.default_cameras(2)
    with torch.no_grad():
        full = G.render(planes, cams, resolution=32)["image"]
        patch = Patch(torch.full((2,), 0.5), torch.tensor([[0.25, 0.5], [0.0, 0.25]]))
        part = G.render(planes, cams, resolution=16, patch=patch)["image"]
    torch.testing.assert_close(part[0], full[0, :, 16:32, 8:24], atol=1e-5, rtol=0)
    torch.testing.assert_close(part[1], full[1, :, 8:24, 0:16], atol=1e-5, rtol=0)


def test_prepare_builds_ahead_and_prepared_says_so(demo, counted):
    G, planes = demo
    planes = planes.clone()
    assert not G.prepared(planes)
    grid = G.prepare(planes)
    assert grid is not None and not grid.fog and counted["build"] == 1 and G.prepared(planes)
    with torch.no_grad():
        G.render(planes, G.default_cameras(2), resolution=8)
    assert counted["build"] == 1  # the render found it


def test_viewer_first_frame_of_a_latent_does_not_wait_for_the_grid(counted):
    """The viewer's engine renders a latent's first frame densely (no grid build on the critical
    path of a latent switch); the next frame of the same latent skips, building the grid once."""
    from viewer.camera import preset
    from viewer.latent import LatentSpec
    from viewer.rendering import LoadedModel, Quality, RenderEngine, RenderRequest, ViewSpec
    G, info = load_generator("demo")
    model = LoadedModel(G, info, "demo", torch.device("cpu"))
    engine = RenderEngine()
    req = RenderRequest(model, LatentSpec.from_seed(0, 1.0, 1), ViewSpec(preset("mean", G.cfg.camera), "rgb", 16))
    engine.render(req, Quality(16, 8, 8))
    assert counted["build"] == 0 and counted["skip"] == 0
    engine.render(req, Quality(16, 8, 8))
    assert counted["build"] == 1 and counted["skip"] > 0


def test_decoder_is_folded_from_a_planes_second_render_on(demo, monkeypatch):
    """A one-off render does not pay for the fold; the second render of the same planes folds."""
    from core import kernels
    G, planes = demo
    planes = planes.clone()
    folds = []
    fold = kernels.fold_first_layer
    monkeypatch.setattr(kernels, "fold_first_layer", lambda *a: folds.append(1) or fold(*a))
    with torch.no_grad():
        first = G.render(planes, G.default_cameras(2), resolution=12)
        assert not folds
        second = G.render(planes, G.default_cameras(2), resolution=12)
        G.render(planes, G.default_cameras(2), resolution=12)
    assert len(folds) == 1
    torch.testing.assert_close(first["image"], second["image"], atol=2e-5, rtol=0)


def test_a_prepared_latent_renders_folded_from_its_first_frame(demo):
    G, planes = demo
    planes = planes.clone()
    G.prepare(planes)
    with torch.no_grad():
        a = G.render(planes, G.default_cameras(2), resolution=12)
        b = G.render(planes, G.default_cameras(2), resolution=12)
    assert torch.equal(a["image"], b["image"])  # the same (folded) path both times
