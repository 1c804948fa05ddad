"""EG3D's dual discriminator: reference parameter counts and names, input stacking, camera
conditioning, minibatch-std groups, gradients for R1, the antialiased resize and the blur fade-in."""

import math

import pytest
import torch
import torch.nn.functional as F

from core.networks.discriminator import minibatch_std
from core.networks.dual_discriminator import DualDiscriminator, blur_image, blur_sigma, filtered_resize

S = 32  # tiny D for everything but the counts: channels 8, 16, 16 | 16 at 4x4


def tiny(**kw) -> DualDiscriminator:
    base = dict(c_dim=25, img_resolution=S, channel_base=256, channel_max=16)
    base.update(kw)
    return DualDiscriminator(**base)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def inputs(n: int = 4, raw: int = S // 2):
    return torch.rand(n, 3, S, S) * 2 - 1, torch.rand(n, 3, raw, raw) * 2 - 1, torch.randn(n, 25)


# --- layout against the reference -----------------------------------------------------------------

@pytest.mark.parametrize("res,total", [(512, 31_359_744), (256, 31_241_216), (128, 30_766_592)])
def test_parameter_count_matches_the_reference(res, total):
    with torch.device("meta"):
        D = DualDiscriminator(c_dim=25, img_resolution=res)
    assert count(D) == total


def test_per_module_parameter_counts_at_512():
    with torch.device("meta"):
        D = DualDiscriminator(c_dim=25, img_resolution=512)
    expected = {"b512": 119_424, "b256": 475_520, "b128": 1_901_312, "b64": 4_981_760, "b32": 4_981_760,
                "b16": 4_981_760, "b8": 4_981_760, "b4": 6_821_888, "mapping": 2_114_560}
    assert {name: count(m) for name, m in D.named_children()} == expected


def test_state_dict_names_follow_the_reference():
    D = tiny(img_resolution=64)
    expected = set()
    for res in (64, 32, 16, 8):
        layers = (["fromrgb"] if res == 64 else []) + ["conv0", "conv1"]
        expected |= {f"b{res}.{layer}.{p}" for layer in layers for p in ("weight", "bias")}
        expected.add(f"b{res}.skip.weight")
    expected |= {f"b4.{layer}.{p}" for layer in ("conv", "fc", "out") for p in ("weight", "bias")}
    expected |= {f"mapping.{layer}.{p}" for layer in ["embed"] + [f"fc{i}" for i in range(8)]
                 for p in ("weight", "bias")}
    assert set(D.state_dict()) == expected
    # fromRGB reads both images (6 channels); channel widths min(256 / res, 16).
    assert D.b64.fromrgb.weight.shape == (4, 6, 1, 1)
    assert D.b64.conv1.weight.shape == (8, 4, 3, 3) and D.b8.skip.weight.shape == (16, 16, 1, 1)
    assert D.mapping.embed.weight.shape == (16, 25) and D.b4.out.weight.shape == (16, 16)


# --- forward ------------------------------------------------------------------------------------

def test_output_shape_and_resolution_steps():
    D = tiny()
    sizes = []
    hooks = [getattr(D, f"b{r}").register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
             for r in D.block_resolutions]
    out = D(*inputs(4))
    for h in hooks:
        h.remove()
    assert out.shape == (4, 1) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert sizes == [(16, 16, 16), (16, 8, 8), (16, 4, 4)]


def test_input_is_the_image_stacked_with_the_resized_raw_image():
    D = tiny()
    img, raw, c = inputs(2)
    seen = []
    D.b32.fromrgb.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    out_small = D(img, raw, c)
    out_full = D(img, filtered_resize(raw, S), c)
    assert seen[0].shape == (2, 6, S, S)
    assert torch.equal(seen[0][:, :3], img)
    assert torch.equal(seen[0][:, 3:], seen[1][:, 3:])
    assert torch.equal(out_small, out_full)
    # The raw image matters: a different one changes the logits.
    assert not torch.allclose(D(img, -raw, c), out_small)


def test_camera_conditioning():
    D = tiny(mbstd_group=1).eval()
    img, raw, c = inputs(4)
    img[1], raw[1], c[1] = img[0], raw[0], c[0]  # slot 1 duplicates slot 0
    img[2], raw[2] = img[0], raw[0]  # slot 2: same images, another camera
    with torch.no_grad():
        out = D(img, raw, c)
    assert torch.equal(out[0], out[1])
    assert not torch.allclose(out[0], out[2])


def test_camera_embedding_is_normalised_to_unit_second_moment():
    # embed is linear with zero bias at init, so after the normalisation the mapping ignores c's scale.
    D = tiny()
    c = torch.randn(3, 25)
    with torch.no_grad():
        assert torch.allclose(D.cmap(3 * c), D.cmap(c), atol=1e-5)
        assert not torch.allclose(D.cmap(-c), D.cmap(c), atol=1e-3)


def test_no_camera_means_a_plain_head():
    D = tiny(c_dim=0)
    assert D.mapping is None and D.b4.out.weight.shape == (1, 16)
    img, raw, _ = inputs(2)
    assert D(img, raw).shape == (2, 1)


def test_rejects_bad_shapes_and_a_missing_camera():
    D = tiny()
    img, raw, c = inputs(2)
    with pytest.raises(ValueError):
        D(img[:, :, :16, :16], raw, c)
    with pytest.raises(ValueError):
        D(img, raw[:1], c)
    with pytest.raises(ValueError):
        D(img, raw)


def test_camera_noise_scales_with_each_columns_batch_std_and_only_in_training():
    D = tiny(disc_c_noise=1.0)
    img, raw, c = inputs(4)
    c[:, 0] = 0.5  # a constant column has std 0: no noise there
    before = c.clone()
    seen = []
    D.mapping.embed.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    D.train()(img, raw, c)
    D.eval()(img, raw, c)
    assert torch.equal(c, before)  # the caller's tensor is left alone
    noisy, clean = seen
    assert torch.equal(noisy[:, 0], c[:, 0]) and not torch.allclose(noisy[:, 1:], c[:, 1:])
    assert torch.equal(clean, c)


def test_minibatch_std_uses_stylegan2_strided_groups():
    x = torch.randn(8, 6, 4, 4)
    y = minibatch_std(x, group=4, strided=True)
    assert y.shape == (8, 7, 4, 4) and torch.equal(y[:, :6], x)
    for start in (0, 1):
        idx = list(range(start, 8, 2))  # samples b, b + B/G, ... share a group
        var = x[idx].var(dim=0, unbiased=False)
        expected = (var + 1e-8).sqrt().mean()
        for i in idx:
            assert torch.allclose(y[i, 6], expected.expand(4, 4), atol=1e-6)

    # In D: changing sample 1 moves only the logits of its group {1, 3, 5, 7}.
    D = tiny(mbstd_group=4).eval()
    img, raw, c = inputs(8)
    with torch.no_grad():
        a = D(img, raw, c)
        img[1] = -img[1]
        b = D(img, raw, c)
    changed = (a != b).flatten().tolist()
    assert changed == [False, True, False, True, False, True, False, True]


def test_gradients_reach_both_images_for_r1():
    D = tiny()
    img, raw, c = inputs(4)
    img.requires_grad_(True)
    raw.requires_grad_(True)
    g_img, g_raw = torch.autograd.grad(D(img, raw, c).sum(), [img, raw], create_graph=True)
    for g in (g_img, g_raw):
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    penalty = g_img.square().sum() + g_raw.square().sum()
    penalty.backward()  # R1 backpropagates through the gradients into D
    assert D.b32.fromrgb.weight.grad.abs().sum() > 0 and D.mapping.fc7.weight.grad.abs().sum() > 0


# --- filtered resize ----------------------------------------------------------------------------

def test_filtered_resize_shapes():
    x = torch.rand(2, 3, 16, 16)
    assert filtered_resize(x, 32).shape == (2, 3, 32, 32)
    assert filtered_resize(x, 8).shape == (2, 3, 8, 8)
    assert filtered_resize(x, (8, 4)).shape == (2, 3, 8, 4)


def test_filtered_resize_undoes_a_nearest_upsampling_of_a_smooth_image():
    u = torch.linspace(0, 1, 32)
    smooth = (torch.sin(2 * math.pi * u)[:, None] * torch.cos(math.pi * u)[None, :])[None, None].repeat(1, 3, 1, 1)
    back = filtered_resize(F.interpolate(smooth, scale_factor=2, mode="nearest"), 32)
    assert back.shape == smooth.shape
    err = (back - smooth).abs()
    assert err[..., 1:-1, 1:-1].max() < 0.01  # a slight blur
    assert err.max() < 0.04  # at the border the kernel is one-sided (renormalised)


def test_filtered_resize_downscales_with_an_antialiasing_kernel():
    # A 2x nearest upsampling then a 2x antialiased bilinear downscale is, away from the border,
    # the separable filter [1/8, 3/4, 1/8] (the tent stretched by 2): exact on ramps, a blur on noise.
    # Plain bilinear would return the original exactly.
    x = torch.rand(1, 2, 12, 12)
    back = filtered_resize(F.interpolate(x, scale_factor=2, mode="nearest"), 12)
    k = torch.tensor([0.125, 0.75, 0.125])
    kernel = torch.outer(k, k).expand(2, 1, 3, 3)
    expected = F.conv2d(x, kernel, groups=2)  # valid part: pixels 1 .. 10
    assert torch.allclose(back[:, :, 1:-1, 1:-1], expected, atol=1e-5)
    assert not torch.allclose(back, x, atol=1e-2)

    ramp = torch.arange(12.0)[None, None, None, :].expand(1, 1, 12, 12) * 0.1
    back = filtered_resize(F.interpolate(ramp, scale_factor=2, mode="nearest"), 12)
    assert torch.allclose(back[..., 1:-1], ramp[..., 1:-1], atol=1e-5)


# --- blur fade-in -------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.5, 1.3, 2.0])
def test_blur_matches_a_direct_2d_convolution(sigma):
    x = torch.randn(2, 3, 20, 20)
    r = math.floor(3 * sigma)
    w = torch.tensor([2.0 ** (-((i / sigma) ** 2)) for i in range(-r, r + 1)])
    w = w / w.sum()
    kernel = torch.outer(w, w).expand(3, 1, 2 * r + 1, 2 * r + 1)
    expected = F.conv2d(x, kernel, padding=r, groups=3)
    assert torch.allclose(blur_image(x, sigma), expected, atol=1e-5)


def test_blur_is_normalised_and_zero_padded():
    sigma, r = 1.5, 4
    out = blur_image(torch.full((1, 1, 16, 16), 0.7), sigma)
    assert out.shape == (1, 1, 16, 16)
    assert torch.allclose(out[..., r:-r, r:-r], torch.full((8, 8), 0.7), atol=1e-6)
    assert (out[..., 0, 0] < 0.7 - 0.1).all()  # zeros enter at the corner


def test_blur_off_for_non_positive_sigma():
    x = torch.randn(1, 3, 8, 8)
    assert blur_image(x, 0.0) is x and blur_image(x, -1.0) is x
    assert torch.equal(blur_image(x, 0.2), x)  # radius floor(0.6) = 0: a single tap of weight 1


def test_blur_sigma_fades_linearly_to_zero():
    assert blur_sigma(0, 200) == 10.0
    assert blur_sigma(100_000, 200) == pytest.approx(5.0)
    assert blur_sigma(200_000, 200) == 0.0 and blur_sigma(300_000, 200) == 0.0
    assert blur_sigma(50_000, 200, init_sigma=4.0) == pytest.approx(3.0)
    assert blur_sigma(0, 0) == 0.0 and blur_sigma(0, -1) == 0.0
