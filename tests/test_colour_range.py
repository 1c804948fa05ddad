"""The colour-range penalty (train.rgb_range_weight): its value and gradient against the closed form
for a decoder whose colour is a constant, and its place in the G phase."""

import pytest
import torch

from core.config import get_preset
from core.networks.generator import TriPlaneGenerator
from core.training.loss import colour_range_penalty
from tests.conftest import run_g_phase, tiny_config

COLOUR = (3.0, -2.0, 0.5)  # excess over [-1, 1]: 2, 1, 0
PENALTY = (2.0 ** 2 + 1.0 ** 2) / 3  # mean over the three channels (every point has the same colour)
BIAS_GRAD = (2 * 2.0 / 3, -2 * 1.0 / 3, 0.0, 0.0)  # d/db of mean(excess^2): 2 excess sign(c) / 3


def _constant_colour_generator(cfg):
    G = TriPlaneGenerator(cfg)
    with torch.no_grad():  # the last layer ignores its input: colour COLOUR, raw density 0
        G.decoder.fc1.weight.zero_()
        G.decoder.fc1.bias.copy_(torch.tensor([*COLOUR, 0.0]) / G.decoder.fc1.bias_gain)
    return G


def test_penalty_matches_the_closed_form_and_its_gradient():
    G = _constant_colour_generator(tiny_config())
    planes = G.planes(G.mapping(torch.randn(2, G.cfg.generator.z_dim), None))
    penalty = colour_range_penalty(G, planes, 64)
    assert penalty.item() == pytest.approx(PENALTY, rel=1e-6)
    penalty.backward()
    grad = G.decoder.fc1.bias.grad / G.decoder.fc1.bias_gain  # gradient to the effective bias
    torch.testing.assert_close(grad, torch.tensor(BIAS_GRAD), rtol=1e-5, atol=1e-7)

    with torch.no_grad():  # in range: no penalty, whatever the colour inside it
        G.decoder.fc1.bias.copy_(torch.tensor([0.9, -0.99, 0.0, 0.0]) / G.decoder.fc1.bias_gain)
    assert colour_range_penalty(G, planes, 64).item() == 0.0


def _g_phase_bias_grad(cfg):
    torch.manual_seed(1)
    G = _constant_colour_generator(cfg)
    stats = run_g_phase(cfg, G)
    return G.decoder.fc1.bias.grad / G.decoder.fc1.bias_gain, stats


def test_g_phase_adds_the_weighted_penalty_to_the_gan_loss():
    cfg = tiny_config()
    cfg.train.patch_res = 8
    cfg.train.rgb_range_weight = 0.0
    grad_off, stats_off = _g_phase_bias_grad(cfg)
    assert "rgb_excess" not in stats_off
    cfg.train.rgb_range_weight = 0.5
    grad_on, stats_on = _g_phase_bias_grad(cfg)
    assert stats_on["rgb_excess"] == pytest.approx(PENALTY, rel=1e-6)
    assert stats_on["loss_G"] == pytest.approx(stats_off["loss_G"], rel=1e-6)  # loss_G stays the GAN part
    # the GAN part is the same (same seed, the penalty draws its points last): the difference is the penalty's
    torch.testing.assert_close(grad_on - grad_off, 0.5 * torch.tensor(BIAS_GRAD), rtol=1e-4, atol=1e-6)


def test_the_demo_preset_uses_the_penalty_and_the_reference_presets_do_not():
    assert get_preset("demo").train.rgb_range_weight > 0
    assert get_preset("ffhq512").train.rgb_range_weight == 0 and get_preset("megascans256").train.rgb_range_weight == 0
