"""The NeRF++ background (generator.bg_model 'sphere'): geometry, encoding, layers and compositing
against definitions written out per ray / per sample, and training with it."""

import math

import torch
import torch.nn.functional as F

from core.cameras import from_angles
from core.networks.background import ModulatedLinear, fourier_encode, sphere_points
from core.networks.generator import TriPlaneGenerator
from core.training import distributed as distlib
from core.training.loop import train
from tests.tiny_train import tiny_train_config


def test_sphere_points_lie_on_the_ray_at_distance_one_over_s():
    g = torch.Generator().manual_seed(0)
    o = F.normalize(torch.randn(50, 3, generator=g, dtype=torch.float64), dim=-1) * torch.rand(50, 1, generator=g,
                                                                                            dtype=torch.float64)
    d = F.normalize(torch.randn(50, 3, generator=g, dtype=torch.float64), dim=-1)
    s = torch.tensor([1.0, 0.7, 0.3, 0.05, 0.0], dtype=torch.float64).expand(50, 5)
    pts = sphere_points(o, d, s)
    assert torch.equal(pts[..., 3], s)
    for i in range(50):
        for k in range(5):
            x = pts[i, k, :3]
            if s[i, k] == 0:  # the point at infinity: the ray's direction
                torch.testing.assert_close(x, d[i])
                continue
            r = 1 / s[i, k]
            # the far root of |o + t d| = r, solved from the quadratic by hand
            b, c = 2 * torch.dot(o[i], d[i]), torch.dot(o[i], o[i]) - r * r
            t = (-b + math.sqrt(b * b - 4 * c)) / 2
            assert t >= 0
            p = o[i] + t * d[i]
            torch.testing.assert_close(p.norm(), r.clone().detach())
            torch.testing.assert_close(x, p / p.norm())


def test_fourier_encoding_layout():
    v = torch.tensor([[0.3, -0.2, 0.9, 0.5]])
    e = fourier_encode(v, 6)
    want = []
    for c in range(4):  # coordinate-major: 6 sines then 6 cosines per coordinate
        want += [math.sin(math.pi * 2 ** j * float(v[0, c])) for j in range(6)]
        want += [math.cos(math.pi * 2 ** j * float(v[0, c])) for j in range(6)]
    torch.testing.assert_close(e[0], torch.tensor(want))


def test_modulated_linear_layers_per_sample():
    torch.manual_seed(0)
    for demod in (True, False):
        layer = ModulatedLinear(5, 3, 4, demod).double()
        with torch.no_grad():
            layer.bias.normal_()
        x, w = torch.randn(2, 7, 5, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
        y = layer(x, w)
        for b in range(2):
            styles = w[b] @ (layer.affine.weight * layer.affine.weight_gain).T + layer.affine.bias
            if not demod:
                styles = styles / math.sqrt(5)
            W = layer.weight * styles  # [out, in]: modulated per sample
            for n in range(7):
                h = W @ x[b, n]
                if demod:
                    h = h / torch.sqrt((W ** 2).sum(1) + 1e-8)
                    h = F.leaky_relu(h + layer.bias, 0.2) * math.sqrt(2)
                else:
                    h = h + layer.bias
                torch.testing.assert_close(y[b, n], h)


def _bg_config():
    cfg = tiny_train_config()
    cfg.render.far_opaque, cfg.render.background = False, "zero"
    # the tests below replace G.query by constant fields: keep inference on the dense path through
    # G.query (the skipping path, and the folded decoder, evaluate the tri-planes directly)
    cfg.render.skip_empty, cfg.render.fold_decoder = False, False
    g = cfg.generator
    g.bg_model, g.bg_channels, g.bg_blocks, g.bg_steps = "sphere", 8, 2, 5
    return cfg


def test_composite_with_constant_fields():
    """Constant foreground colour and density, and a background of constant colour and density: the
    pixel is C_f (1 - e^{-sigma_f (L + 1e-3)}) + e^{-sigma_f L} C_b, L = far - near (the background's last
    interval is opaque, so all of it shows behind the foreground's transmittance)."""
    cfg = _bg_config()
    cfg.render.num_fine = 0
    G = TriPlaneGenerator(cfg).eval()
    sig_f, c_f, sig_b, c_b = 2.0, torch.tensor([0.3, -0.2, 0.5]), 0.7, torch.tensor([-0.4, 0.6, 0.1])
    G.query = lambda planes, pts, density_noise=0.0, impl=None: (c_f.expand(*pts.shape[:-1], 3), torch.full(pts.shape[:-1], sig_f))
    G.background.forward = lambda coords, w: torch.cat(
        [c_b.expand(*coords.shape[:-1], 3), torch.full((*coords.shape[:-1], 1), math.log(math.expm1(sig_b)))], -1)
    cams = from_angles(torch.tensor([0.3]), torch.tensor([1.2]), 1.0, 30.0, near=0.75, far=1.25)
    planes = torch.zeros(1, 3, cfg.generator.plane_channels, 16, 16)
    w = torch.zeros(1, cfg.generator.w_dim)
    with torch.no_grad():
        out = G.render(planes, cams, resolution=4, w=w)
    # foreground: the coarse depths cover near..far (0.5), then the last interval of 1e-3
    fg_alpha = 1 - math.exp(-sig_f * (0.5 + 1e-3))
    t_last = math.exp(-sig_f * 0.5)  # in front of the last sample
    # background: the disparities cover 1..0, then the last interval of 1e10 takes all the rest
    bg = c_b
    want = c_f * fg_alpha + t_last * bg
    torch.testing.assert_close(out["image"][0, :, 0, 0], want.float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["background"][0, :, 0, 0], bg, atol=1e-6, rtol=0)
    assert abs(float(out["opacity"][0, 0, 0, 0]) - fg_alpha) < 1e-6


def test_trains_with_the_background(dataset, tmp_path):
    cfg = _bg_config()
    torch.manual_seed(cfg.train.seed)
    fresh = TriPlaneGenerator(cfg).state_dict()
    out = train(cfg, dataset, tmp_path / "run", None, torch.device("cpu"), distlib.Dist(), max_steps=4)
    from core.checkpoint import load_checkpoint, load_generator
    snap = sorted((tmp_path / "run").glob("network-snapshot-*.pt"))[-1]
    data = load_checkpoint(snap)
    keys = [k for k in data["G"] if k.startswith("background.")]
    assert keys and any(not torch.equal(data["G"][k], fresh[k]) for k in keys), "the background did not train"
    G, _ = load_generator(str(snap))
    with torch.no_grad():
        w = G.mapping(torch.randn(1, cfg.generator.z_dim))
        img = G.render(G.planes(w), G.default_cameras(), resolution=8, w=w)["image"]
    assert torch.isfinite(img).all() and out["steps"] == 4
