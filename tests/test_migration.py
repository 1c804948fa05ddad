"""Checkpoint format migration 1 -> 2: old checkpoints render and resume exactly as before."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.cameras import from_angles
from core.checkpoint import BUNDLED_DEMO, load_checkpoint, load_generator, save_checkpoint
from core.migrations import CONV0_WEIGHT
from core.networks.generator import TriPlaneGenerator
from core.networks.layers import ModulatedConv, ToRGB
from tests.conftest import tiny_config

FIXTURE = Path(__file__).parent / "fixtures" / "demo_v1_render.npz"


@pytest.mark.skipif(not BUNDLED_DEMO.exists(), reason="bundled demo model missing")
def test_demo_renders_as_the_version_1_code_rendered_it():
    """tests/fixtures/demo_v1_render.npz was written by the version-1 code (flipped conv0 kernels,
    no clamp, pdf eps 1e-5) from checkpoints/demo.pt, which is still a version-1 file."""
    ref = np.load(FIXTURE)
    data = load_checkpoint(BUNDLED_DEMO)
    if "migrated_from" not in data:
        pytest.skip("the bundled model is a format-2 file: the format-1 render no longer applies to it")
    assert data["version"] == 2 and data["migrated_from"] == 1
    assert data["config"]["generator"]["conv_clamp"] == 0.0 and data["config"]["render"]["pdf_eps"] == 1e-5
    G, _ = load_generator("demo")
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"]), psi=0.7)
        planes = G.planes(w)
        cams = from_angles(torch.from_numpy(ref["yaw"]), torch.from_numpy(ref["pitch"]), 1.0, 30.0,
                           near=0.75, far=1.25)
        out = G.render(planes, cams, resolution=32, skip_empty=False)  # the fixture's dense sampler
    np.testing.assert_allclose(w.numpy(), ref["w"], atol=1e-6)
    np.testing.assert_allclose(planes[:, :, :, ::4, ::4].numpy(), ref["planes_strided"], atol=2e-5, rtol=0)
    np.testing.assert_allclose(out["image"].numpy(), ref["image"], atol=2e-5, rtol=0)
    np.testing.assert_allclose(out["depth_raw"].numpy(), ref["depth_raw"], atol=2e-5, rtol=0)


def test_version_1_training_state_is_migrated(tmp_path):
    """G, G_ema and G's Adam moments of conv0 kernels are flipped, nothing else changes."""
    cfg = tiny_config()
    G = TriPlaneGenerator(cfg)
    opt = torch.optim.Adam(G.parameters())
    for p in G.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    path = tmp_path / "v1.pt"
    save_checkpoint(path, cfg, G, G=G, opt_G=opt.state_dict())
    raw = torch.load(path, weights_only=True)
    raw["version"] = 1
    for k in ("conv_clamp",):
        raw["config"]["generator"].pop(k)
    raw["config"]["render"].pop("pdf_eps")
    from core.checkpoint import content_digest
    raw["digest"] = content_digest(raw)
    torch.save(raw, path)

    data = load_checkpoint(path)
    names = [n for n, _ in G.named_parameters()]
    flipped = 0
    for key in ("G", "G_ema"):
        for k, v in raw[key].items():
            want = v.flip([2, 3]) if CONV0_WEIGHT.match(k) else v
            assert torch.equal(data[key][k], want), k
            flipped += bool(CONV0_WEIGHT.match(k))
    assert flipped == 2 * (len(G.synthesis.blocks) - 1)
    for idx, s in raw["opt_G"]["state"].items():
        for m in ("exp_avg", "exp_avg_sq"):
            want = s[m].flip([2, 3]) if CONV0_WEIGHT.match(names[idx]) else s[m]
            assert torch.equal(data["opt_G"]["state"][idx][m], want), names[idx]
    # the migrated state loads into a current optimiser
    torch.optim.Adam(G.parameters()).load_state_dict(data["opt_G"])


def _transposed_conv_loop(x, weight):
    """Stride-2 transposed conv by its definition: out[o, 2i + a, 2j + b] += x[c, i, j] * weight[c, o, a, b]."""
    cin, h, w = x.shape
    _, cout, k, _ = weight.shape
    out = torch.zeros(cout, 2 * (h - 1) + k, 2 * (w - 1) + k, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            for a in range(k):
                for b in range(k):
                    out[:, 2 * i + a, 2 * j + b] += (x[:, i, j, None] * weight[:, :, a, b]).sum(0)
    return out


def test_upsampling_conv_uses_the_kernel_as_stored():
    """conv0's transposed convolution against a loop over the definition (no flip), in float64."""
    torch.manual_seed(0)
    layer = ModulatedConv(3, 2, 4, 8, up=True, use_noise=False).double()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    w = torch.randn(1, 4, dtype=torch.float64)
    seen = {}
    handle = torch.nn.functional.conv_transpose2d
    try:
        def spy(inp, weight, **kw):
            seen["out"] = handle(inp, weight, **kw)
            seen["in"], seen["weight"] = inp, weight
            return seen["out"]
        torch.nn.functional.conv_transpose2d = spy
        layer(x, w)
    finally:
        torch.nn.functional.conv_transpose2d = handle
    weight = layer.weight.detach() * layer.weight_gain  # [out, in, k, k]: as stored, times the gain
    want = _transposed_conv_loop(seen["in"][0], weight.transpose(0, 1))
    torch.testing.assert_close(seen["out"][0], want)


def test_activation_clamp():
    torch.manual_seed(0)
    conv = ModulatedConv(4, 4, 8, 8, use_noise=False, conv_clamp=256.0)
    rgb = ToRGB(4, 3, 8, conv_clamp=256.0)
    with torch.no_grad():
        conv.bias.fill_(1000.0)
        rgb.bias.copy_(torch.tensor([1000.0, -1000.0, 0.0]))
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    y = conv(x, w)
    assert torch.all(y == 256.0)
    out = rgb(0.01 * x, w)
    assert torch.all(out[:, 0] == 256.0) and torch.all(out[:, 1] == -256.0) and out[:, 2].abs().max() < 256
    conv.conv_clamp = 0.0
    assert conv(x, w).min() > 1000.0
