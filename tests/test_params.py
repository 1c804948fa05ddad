"""Parameter counts against the EpiGRAF reference (docs/spec.md, "Generator")."""

import dataclasses

from core.config import get_preset
from core.networks.generator import TriPlaneGenerator


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_reference_generator_counts():
    # The reference's count is of its unconditional generator (no label, no pose conditioning):
    # megascans256 is exactly that, and ffhq512 with pose conditioning switched off.
    for cfg in (get_preset("megascans256"), get_preset("ffhq512")):
        cfg.generator = dataclasses.replace(cfg.generator, pose_cond=False)
        G = TriPlaneGenerator(cfg)
        assert count(G) == 28_983_507
        assert count(G.mapping_network) == 525_312
        assert count(G.decoder) == 2_372


def test_pose_conditioning_adds_the_label_embedding_and_a_wider_first_layer():
    G = TriPlaneGenerator(get_preset("ffhq512"))  # pose_cond on, as the reference has it for FFHQ (docs/spec.md)
    embed = 2 * 512 + 512  # FC 2 -> 512 with bias
    wider = 512 * 512  # the first mapping layer now reads z (512) and the embedded label (512)
    assert count(G) == 28_983_507 + embed + wider
