"""The bundled demo model (checkpoints/demo.pt): it loads without running code, matches its model
card (checkpoints/demo_card.json, demo.md), and renders an object, not fog or nothing, from
every side."""

import json
import math
from pathlib import Path

import torch

from core import cameras as camlib
from core.checkpoint import BUNDLED_DEMO, load_checkpoint, load_generator
from core.runtime import class_label, z_from_seed

CARD = BUNDLED_DEMO.with_name("demo_card.json")
MODEL_CARD = BUNDLED_DEMO.with_name("demo.md")
# the data's objects with a hole (the mug's handle, the torus): their meshes may have genus 1 and
# are not solid (the mug is open at the top); the others are genus-0 solids
HOLED = {"mug", "torus", "torus_textured"}  # torus_textured: data made before --class-names


def subjects(G, info) -> list[tuple[int, torch.Tensor | None, str]]:
    """(seed, label, class name) to look at: seeds 0-2, or of a class-conditional model seed 0 of each class."""
    c_dim = G.cfg.generator.c_dim
    if c_dim == 0:
        return [(s, None, "") for s in (0, 1, 2)]
    names = info["meta"].get("class_names") or [str(k) for k in range(c_dim)]
    return [(0, class_label(c_dim, k), names[k]) for k in range(c_dim)]


def test_bundled_model_loads_safely_and_matches_its_card():
    assert BUNDLED_DEMO.stat().st_size < 30 * 2**20
    data = load_checkpoint(BUNDLED_DEMO)  # torch.load(weights_only=True) + digest check
    card = json.loads(CARD.read_text())
    G, info = load_generator("demo")
    assert Path(info["source"]).resolve() == BUNDLED_DEMO.resolve()
    assert data["digest"] == card["digest"]
    want = card["config"]
    if data.get("migrated_from") == 1:  # a format-1 file: the migration turns the clamp off, pdf eps 1e-5
        want["generator"]["conv_clamp"], want["render"]["pdf_eps"] = 0.0, 1e-5
    assert info["config"] == want
    assert info["meta"]["kimg"] == card["meta"]["kimg"]
    assert info["meta"]["dataset"] == "demo_objects"
    text = MODEL_CARD.read_text()
    assert f"{card['meta']['kimg']:g} kimg" in text  # the card states how long it trained
    for name in card["metrics"]:
        assert name in text
    # the training state it carries continues training (tests/test_train.py covers the mechanism)
    assert {"G", "D", "progress"} <= data.keys()
    assert data["progress"]["cur_nimg"] == round(card["meta"]["kimg"] * 1000)


@torch.no_grad()
def test_bundled_model_renders_an_object_from_every_side():
    G, info = load_generator("demo")
    c = G.cfg.camera
    yaw = [2 * math.pi * i / 6 for i in range(6)] + [0.4, 0.4]
    pitch = [math.pi / 2] * 6 + [0.3, math.pi - 0.3]
    cams = camlib.from_angles(torch.tensor(yaw), torch.tensor(pitch), radius=c.radius, fov_deg=c.fov_deg, cfg=c)
    images = []
    for seed, label, name in subjects(G, info):
        planes = G.planes(G.mapping(z_from_seed(seed, G.cfg.generator.z_dim), label, psi=1.0))
        out = G.render(planes.expand(len(cams), -1, -1, -1, -1), cams, resolution=64)
        op = out["opacity"].reshape(len(cams), 64, 64)
        mean = op.mean((1, 2))
        # the data's objects cover 5-60% of a view; neither empty nor a wall of fog
        assert ((mean > 0.03) & (mean < 0.9)).all(), (seed, name, mean)
        # an opaque object in the middle: a tenth of the central 32x32 window is opaque (> 0.5). Not the
        # mean of the centre: the data's torus seen along its axis, or a body of separate lobes, has a
        # gap there; fog (the 36.6-kimg failure, opacity 0.24-0.32) is nowhere opaque and still fails
        centre = op[:, 16:48, 16:48].flatten(1).quantile(0.9, dim=1)
        border = torch.cat([op[:, :4].flatten(1), op[:, -4:].flatten(1), op[:, :, :4].flatten(1),
                            op[:, :, -4:].flatten(1)], 1).mean(1)
        assert (centre > 0.5).all() and (border < 0.2).all(), (seed, name, centre, border)
        images.append(out["image"])
    # different latents (or classes) give different objects
    assert all((a - b).abs().mean() > 0.02 for a, b in zip(images, images[1:]))


@torch.no_grad()
def test_bundled_model_meshes_are_closed_solids_matching_the_renders():
    """The default extraction (visibility surface, automatic level) of seeds 0-2 (or each class) on a
    64^3 grid: one closed body whose silhouette matches the rendered opacity (IoU over six views), of
    genus 0 (at most 1 for a class with a hole), solid (enclosed volume over the convex hull's, where
    a hollow density shell gives 0.27-0.34; not checked for the classes with a hole)."""
    from core.geometry import Box, extract_mesh, generator_level, separable_grid
    from core.geometry.visibility import surface_grid
    G, info = load_generator("demo")
    box = Box.cube(G.cfg.generator.cube_scale)
    for seed, label, name in subjects(G, info):
        planes = G.planes(G.mapping(z_from_seed(seed, G.cfg.generator.z_dim), label, psi=1.0))
        grid = surface_grid(separable_grid(G, planes, box, 64), "visibility")
        choice = generator_level(G, planes, grid)
        mesh = extract_mesh(grid, choice.level)
        assert choice.method == "silhouette" and choice.iou > 0.9, (seed, name, choice)
        genus = (2 - mesh.euler_number) // 2
        assert mesh.is_watertight and 0 <= genus <= (name in HOLED), (seed, name, mesh.euler_number)
        if name not in HOLED:
            assert mesh.volume / mesh.convex_hull.volume > 0.6, (seed, name, mesh.volume / mesh.convex_hull.volume)
