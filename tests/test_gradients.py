"""Gradients of a render reach the tri-planes and the decoder MLP: autograd vs finite differences."""

import torch

from core import cameras as camlib
from core.checkpoint import build_generator
from tests.conftest import tiny_config


def _setup():
    # the finite differences perturb .data in place, which the per-planes inference cache cannot see,
    # and must evaluate the function training differentiates: the dense path, decoder unfolded
    cfg = tiny_config(num_coarse=12, num_fine=0, far_opaque=False, skip_empty=False, fold_decoder=False)
    G = build_generator(cfg, seed=3).double()
    with torch.no_grad():
        planes = G.planes(G.mapping(torch.randn(1, cfg.generator.z_dim, dtype=torch.float64)))
    cams = camlib.from_angles(0.4, 1.3, 1.0, 30.0, cfg=cfg.camera, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in
               (("image", (1, 3, 6, 6)), ("opacity", (1, 1, 6, 6)), ("depth", (1, 1, 6, 6)))}

    def loss(p):
        out = G.render(p, cams, resolution=6, chunk_rays=None)
        return sum((out[k] * w).sum() for k, w in weights.items())
    return G, planes, loss


def _fd(loss, tensor, index, eps=1e-6):
    with torch.no_grad():
        old = tensor[index].item()
        tensor[index] = old + eps
        up = loss().item()
        tensor[index] = old - eps
        down = loss().item()
        tensor[index] = old
    return (up - down) / (2 * eps)


def test_plane_gradients_match_finite_differences():
    G, planes, loss = _setup()
    p = planes.clone().requires_grad_(True)
    loss(p).backward()
    grad = p.grad
    flat = grad.abs().flatten()
    assert flat.max() > 0
    idx = list(torch.topk(flat, 6).indices) + list(torch.randint(0, flat.numel(), (6,)))
    for i in idx:
        index = tuple(torch.unravel_index(i, grad.shape))
        fd = _fd(lambda: loss(p), p.data, index)
        assert abs(fd - grad[index].item()) <= 1e-6 + 1e-4 * abs(fd), (index, fd, grad[index].item())


def test_decoder_gradients_match_finite_differences():
    G, planes, loss = _setup()
    for param in (G.decoder.fc0.weight, G.decoder.fc1.weight, G.decoder.fc1.bias):
        G.zero_grad()
        loss(planes).backward()
        grad = param.grad.clone()
        assert grad.abs().max() > 0
        for i in torch.randint(0, grad.numel(), (5,)):
            index = tuple(torch.unravel_index(i, grad.shape))
            fd = _fd(lambda: loss(planes), param.data, index)
            assert abs(fd - grad[index].item()) <= 1e-6 + 1e-4 * abs(fd), (index, fd, grad[index].item())


def test_gradients_reach_the_synthesis_and_mapping_networks():
    cfg = tiny_config(num_coarse=6, num_fine=6)
    G = build_generator(cfg, seed=4)
    out = G(torch.randn(2, cfg.generator.z_dim), G.default_cameras(2), resolution=4, deterministic=False,
            density_noise=0.5)
    out["image"].square().mean().backward()
    for name in ("mapping_network.layers.0.weight", "synthesis.blocks.0.const", "synthesis.blocks.2.conv1.weight",
                 "synthesis.blocks.2.torgb.weight"):
        assert G.get_parameter(name).grad.abs().max() > 0, name
