"""EpiGRAF's patch discriminator: layout, hyper-modulation at init, conditioning, mixed precision."""

import dataclasses

import pytest
import torch

from core.config import DiscriminatorConfig
from core.networks.discriminator import PatchDiscriminator, minibatch_std
from core.networks.patch_embed import PatchEmbedding


def small_cfg(**kw) -> DiscriminatorConfig:
    """Narrow enough for instant CPU runs; the layout (blocks, fromRGB, conditioning) is the real one."""
    base = dict(channel_base=256, channel_max=16, hyper_dim=16, patch_embed_dim=16)
    base.update(kw)
    return DiscriminatorConfig(**base)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def inputs(b: int = 4, r: int = 64):
    img = torch.rand(b, 3, r, r) * 2 - 1
    s = torch.rand(b // 4 + 1).repeat_interleave(4)[:b] * 0.5 + 0.25  # groups of 4 share a patch
    pp = torch.stack([s, torch.rand(b) * (1 - s), torch.rand(b) * (1 - s)], dim=1)
    return img, pp


def perturb_affines(D: PatchDiscriminator) -> None:
    with torch.no_grad():
        for blk in D.blocks:
            blk.hyper_affine.weight.normal_()
            blk.hyper_affine.bias.normal_(std=0.5)


@pytest.mark.parametrize("R", [64, 128])
def test_block_layout_matches_a_full_resolution_discriminator(R):
    D = PatchDiscriminator(small_cfg(), R)
    n_extra = {64: 0, 128: 1}[R]
    assert [b.resolution for b in D.blocks] == [2 ** i for i in range(R.bit_length() - 1, 2, -1)]  # R .. 8
    assert [b.down for b in D.blocks] == [False] * n_extra + [True] * (len(D.blocks) - n_extra)
    assert D.blocks[0].fromrgb is not None and all(b.fromrgb is None for b in D.blocks[1:])

    # Same blocks (names and weight shapes) as a D that judges whole R x R images.
    full = PatchDiscriminator(small_cfg(), R, patch_res=R)
    shapes = lambda m: {k: v.shape for k, v in m.blocks.state_dict().items()}  # noqa: E731
    assert shapes(D) == shapes(full) and count(D) == count(full)

    sizes = []
    hooks = [b.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for b in D.blocks]
    img, pp = inputs(4)
    out = D(img, pp)
    for h in hooks:
        h.remove()
    assert out.shape == (4, 1) and out.dtype == torch.float32 and torch.isfinite(out).all()
    expected = [64] * n_extra + [32, 16, 8, 4]
    assert [s[1] for s in sizes] == expected
    assert [s[0] for s in sizes] == [min(256 // (b.resolution // 2), 16) for b in D.blocks]


def test_rejects_wrong_patch_size_and_missing_patch_params():
    D = PatchDiscriminator(small_cfg(), 64)
    with pytest.raises(ValueError):
        D(torch.zeros(4, 3, 32, 32), torch.rand(4, 3))
    with pytest.raises(ValueError):
        D(torch.zeros(4, 3, 64, 64))


def test_modulation_is_exactly_identity_at_init_and_not_after_perturbing_A():
    D = PatchDiscriminator(small_cfg(), 64)
    img, pp = inputs(8)
    assert all(torch.equal(s, torch.ones_like(s)) for s in D.modulations(pp))
    with torch.no_grad():
        mod, plain = D(img, pp), D(img, pp, modulate=False)
    assert torch.equal(mod, plain)
    perturb_affines(D)
    sig = D.modulations(pp)
    assert all(((s > 0) & (s < 2)).all() for s in sig) and not torch.allclose(sig[0][0], sig[0][4])
    with torch.no_grad():
        assert not torch.allclose(D(img, pp), D(img, pp, modulate=False))


def test_reference_init_has_random_affine_weights():
    D = PatchDiscriminator(small_cfg(hyper_zero_init=False), 64)
    a = D.blocks[0].hyper_affine
    assert a.weight.abs().sum() > 0 and torch.equal(a.bias, torch.zeros_like(a.bias))


def test_patch_embedding_is_828_d_and_distinguishes_scales_and_offsets():
    emb = PatchEmbedding()
    assert emb.dim == 828 and emb.table.num_embeddings == 1001
    base = torch.tensor([[0.5, 0.2, 0.3]])
    e0 = emb(base)
    assert e0.shape == (1, 828)
    for i in range(3):
        other = base.clone()
        other[0, i] += 0.1
        diff = (emb(other) - e0).abs().view(3, 276).sum(dim=1)
        assert diff[i] > 1 and torch.all(diff[[j for j in range(3) if j != i]] == 0)
    # Below the table's step (0.001) only the Fourier part tells values apart.
    tiny = emb(base + torch.tensor([[2e-4, 0, 0]])) - e0
    assert torch.all(tiny.view(3, 276)[0, 20:] == 0) and tiny.view(3, 276)[0, :20].abs().max() > 0
    D = PatchDiscriminator(DiscriminatorConfig(), 256)
    assert D.patch_embed.dim == 828 and D.hypernet.in_dim == 828 and D.head_mapping.in_dim == 828


def test_patch_parameters_change_the_logits():
    D = PatchDiscriminator(small_cfg(), 64).eval()
    img, pp = inputs(4)
    with torch.no_grad():
        assert not torch.allclose(D(img, pp), D(img, pp.flip(0)))


def test_gradients_reach_the_hypernetwork_only_through_A():
    # At init A = 0: d sigma / dA = h != 0, but dL/dh = A^T (...) = 0, so H's own weights get no
    # gradient yet; the embedding table still learns through the projection head.
    D = PatchDiscriminator(small_cfg(), 64)
    img, pp = inputs(4)
    D(img, pp).sum().backward()
    for blk in D.blocks:
        assert blk.hyper_affine.weight.grad.abs().sum() > 0 and blk.hyper_affine.bias.grad.abs().sum() > 0
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in D.hypernet.parameters())
    assert D.patch_embed.table.weight.grad.abs().sum() > 0
    D.zero_grad(set_to_none=True)
    perturb_affines(D)
    D(img, pp).sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in D.hypernet.parameters())


def test_minibatch_std_uses_groups_of_four_consecutive_samples():
    x = torch.randn(8, 6, 4, 4)
    x[:4] = x[0]  # group 0: identical samples -> std sqrt(1e-8)
    y = minibatch_std(x, group=4)
    assert y.shape == (8, 7, 4, 4) and torch.equal(y[:, :6], x)
    assert torch.allclose(y[:4, 6], torch.full((4, 4, 4), 1e-4))
    g1 = x[4:]
    want = (g1.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    assert torch.allclose(y[4:, 6], want.expand(4, 4, 4))
    assert minibatch_std(x[:2], group=4).shape == (2, 7, 4, 4)  # group = min(4, B)
    with pytest.raises(ValueError):
        minibatch_std(x[:6], group=4)
    D = PatchDiscriminator(small_cfg(), 64)
    assert D.epilogue.mbstd_group == 4 and D.epilogue.conv.weight.shape[1] == 16 + 1


def test_projection_conditioning_on_a_class_label():
    D = PatchDiscriminator(small_cfg(), 64, c_dim=3).eval()
    img, pp = inputs(4)
    c0, c1 = torch.eye(3)[[0] * 4], torch.eye(3)[[1] * 4]
    with torch.no_grad():
        assert not torch.allclose(D(img, pp, c=c0), D(img, pp, c=c1))
    with pytest.raises(ValueError):
        D(img, pp)


def test_class_label_weighs_as_much_as_the_patch_embedding():
    """In the projection mapping's first layer the label moves the output about as much as the
    patch embedding beside it (a bare one-hot beside it would be ~1/sqrt(its size) of it)."""
    torch.manual_seed(0)
    D = PatchDiscriminator(small_cfg(), 64, c_dim=3).eval()
    img, pp = inputs(4)
    emb = D.patch_embed(pp)  # [4, E]
    c = torch.eye(3)[[0, 1, 2, 0]]
    W, _ = D.head_mapping.embed.effective()  # [cmap, 3 + E]
    with torch.no_grad():
        seen = {}
        D.head_mapping.embed.register_forward_hook(lambda m, args, out: seen.update(x=args[0]))  # returns None
        D(img, pp, c=c)
        label_part = seen["x"][:, :3] @ W[:, :3].T
        patch_part = seen["x"][:, 3:] @ W[:, 3:].T
    assert torch.allclose(seen["x"][:, 3:], emb) and torch.allclose(seen["x"][:, :3] / D.label_gain, c)
    ratio = (label_part.norm(dim=1) / patch_part.norm(dim=1)).mean().item()
    assert 0.5 < ratio < 2, ratio


def test_camera_conditioning_dropout_only_in_training():
    D = PatchDiscriminator(small_cfg(camera_cond=True), 64)
    img, pp = inputs(4)
    cam = torch.stack([torch.randn(4) * 0.3, torch.pi / 2 + torch.randn(4) * 0.15], dim=1)
    with torch.no_grad():
        D.eval()
        a, b = D(img, pp, camera=cam), D(img, pp, camera=cam)
        assert torch.equal(a, b)
        assert not torch.allclose(a, D(img, pp, camera=cam + 0.3))
        D.train()
        torch.manual_seed(1)
        t1 = D(img, pp, camera=cam)
        t2 = D(img, pp, camera=cam)
        assert not torch.allclose(t1, t2)
    enc = D.camera_enc(cam)
    assert enc.shape == (4, D.camera_enc.dim) == (4, 26)
    with pytest.raises(ValueError):
        D(img, pp)
    raw = PatchDiscriminator(small_cfg(camera_cond=True, camera_encoding="raw"), 64)
    assert raw.camera_enc.dim == 2


def test_standard_variant_has_no_hypernetwork_nor_patch_conditioning():
    D = PatchDiscriminator(small_cfg(variant="standard"), 128)
    assert D.hypernet is None and D.patch_embed is None and D.head_mapping is None and D.cmap_dim == 0
    assert all(b.hyper_affine is None for b in D.blocks)
    img, pp = inputs(4)
    assert D(img).shape == (4, 1)
    with torch.no_grad():
        assert torch.equal(D(img), D(img, pp))
    with pytest.raises(ValueError):
        PatchDiscriminator(small_cfg(variant="bogus"), 64)


def test_fp16_blocks_are_a_no_op_on_cpu():
    cfg = small_cfg()
    D16 = PatchDiscriminator(cfg, 128)
    D32 = PatchDiscriminator(dataclasses.replace(cfg, num_fp16_res=0), 128)
    D32.load_state_dict(D16.state_dict())
    assert [b.use_fp16 for b in D16.blocks] == [True, True, True, True, False]  # 128, 64, 32, 16 | 8
    img, pp = inputs(4)
    assert all(b.dtype_for(img.device) == torch.float32 for b in D16.blocks)
    with torch.no_grad():
        assert torch.equal(D16(img, pp), D32(img, pp))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 blocks only run on a CUDA GPU")
def test_fp16_blocks_on_cuda_are_close_to_fp32():
    cfg = DiscriminatorConfig()
    D16 = PatchDiscriminator(cfg, 256).cuda()
    D32 = PatchDiscriminator(dataclasses.replace(cfg, num_fp16_res=0), 256).cuda()
    perturb_affines(D16)
    D32.load_state_dict(D16.state_dict())
    img, pp = (t.cuda() for t in inputs(8))
    seen = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for b in D16.blocks]
    out16 = D16(img, pp)
    for h in hooks:
        h.remove()
    assert seen == [torch.float16] * 4 + [torch.float32] * 2 and out16.dtype == torch.float32
    out32 = D32(img, pp)
    assert torch.isfinite(out16).all()
    assert torch.allclose(out16, out32, atol=2e-2 * out32.abs().max().item() + 1e-3)
    out16.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in D16.parameters() if p.grad is not None)


def test_parameter_count_of_the_512_discriminator():
    D = PatchDiscriminator(DiscriminatorConfig(), 512)
    parts = {name: count(m) for name, m in D.named_children()}
    print(f"\nR=512 epigraf D: {count(D):,} parameters; " + ", ".join(f"{k} {v:,}" for k, v in parts.items()))
    assert parts["patch_embed"] == 1001 * 256
    assert parts["hypernet"] == (828 * 512 + 512) + 2 * (512 * 512 + 512)
    assert parts["head_mapping"] == parts["hypernet"]  # same shape: 828 -> 512 -> 512 -> 512
    affines = sum(count(b.hyper_affine) for b in D.blocks)
    assert affines == 513 * (32 + 64 + 128 + 256 + 512 * 3)
    assert count(D) == 27_482_880
    std = PatchDiscriminator(DiscriminatorConfig(variant="standard"), 512)
    out_fc = (512 * 512 + 512) - (512 + 1)  # the last FC maps to cmap_dim = 512 instead of 1
    assert count(D) - count(std) == parts["patch_embed"] + 2 * parts["hypernet"] + affines + out_fc
