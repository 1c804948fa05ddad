"""Patch renders against crops of the full render (the pixel-centre convention, pinned down)."""

import pytest
import torch

from core import cameras as camlib
from core.checkpoint import build_generator
from core.render.rays import Patch, ndc_grid, pixel_ndc
from tests.conftest import tiny_config


def test_full_grid_pixel_centres_are_half_pixels_in():
    g = ndc_grid(4)  # row-major from the top-left pixel
    torch.testing.assert_close(g[0], torch.tensor([-0.75, 0.75]))
    torch.testing.assert_close(g[3], torch.tensor([0.75, 0.75]))
    torch.testing.assert_close(g[-1], torch.tensor([0.75, -0.75]))


def test_patch_offsets_are_measured_from_the_top_left():
    ndc = pixel_ndc(1, 2, Patch(torch.tensor([0.5]), torch.tensor([[0.5, 0.0]])))
    # the top-right quarter of the image: x in [0, 1], y in [0, 1]
    torch.testing.assert_close(ndc[0], torch.tensor([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]]))


@pytest.mark.parametrize("deterministic_fine", [0, 8])
def test_patch_render_equals_crop_of_full_render(deterministic_fine):
    cfg = tiny_config(num_fine=deterministic_fine)
    G = build_generator(cfg, seed=1).eval()
    R, r = 16, 4
    with torch.no_grad():
        planes = G.planes(G.mapping(torch.randn(3, cfg.generator.z_dim)))
        cams = camlib.from_angles(torch.tensor([0.3, -1.0, 2.5]), torch.tensor([1.2, 1.6, 0.7]), 1.0, 30.0, cfg=cfg.camera)
        full = G.render(planes, cams, resolution=R)
        offsets = torch.tensor([[0, 0], [5, 3], [12, 12]])  # (column, row) of the crop's top-left pixel
        patch = Patch(torch.full((3,), r / R), offsets.float() / R)
        part = G.render(planes, cams, resolution=r, patch=patch)
    assert full["opacity"].std() > 1e-3  # the field is not trivially constant
    for i, (k, l) in enumerate(offsets.tolist()):
        for key in ("image", "depth", "opacity"):
            torch.testing.assert_close(part[key][i], full[key][i, :, l:l + r, k:k + r], atol=1e-5, rtol=1e-5)
