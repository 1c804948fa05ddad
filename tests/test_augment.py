"""ADA pipeline: each transform against an independent oracle; the p controller and its state."""

import math

import pytest
import torch
import torch.nn.functional as F

from core.training.augment import COLOUR, GEOMETRIC, AdaController, AugmentConfig, AugmentPipe


def pipe_for(*names: str, p: float = 1.0) -> AugmentPipe:
    return AugmentPipe(AugmentConfig(transforms=",".join(names)), p=p)


def identity_params(b: int) -> dict:
    z, o = torch.zeros(b), torch.ones(b)
    return {"xint": torch.zeros(b, 2), "scale": o, "rotate_pre": z, "aniso": o, "rotate_post": z,
            "xfrac": torch.zeros(b, 2), "brightness": z, "contrast": o, "lumaflip": z, "hue": z, "saturation": o}


def images(b: int = 4, size: int = 16) -> torch.Tensor:
    return torch.rand(b, 3, size, size) * 2 - 1


def test_p_zero_is_the_exact_identity_and_no_x_flip_exists():
    x = images()
    assert AugmentPipe()(x) is x
    assert "xflip" not in GEOMETRIC + COLOUR
    with pytest.raises(ValueError):
        pipe_for("xflip")


def test_all_transforms_preserve_shape_and_keep_gradients():
    x = images(8).requires_grad_(True)
    out = AugmentPipe(p=1.0)(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_geometric_transforms_stay_within_the_input_range():
    x = images(8)
    out = pipe_for(*GEOMETRIC)(x)  # bilinear + reflection: convex combinations of input pixels
    assert out.shape == x.shape
    assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6


def test_integer_translation_is_a_roll_on_the_interior():
    pipe = pipe_for("xint")
    x = images(6)
    params = pipe.sample_params(6, 16, 16)
    assert torch.equal(params["xint"], params["xint"].round()) and params["xint"].abs().max() <= 2
    out = pipe.apply(x, params)
    for i in range(6):
        tx, ty = (int(v) for v in params["xint"][i])
        want = torch.roll(x[i], shifts=(ty, tx), dims=(1, 2))
        ys = slice(max(ty, 0), 16 + min(ty, 0))
        xs = slice(max(tx, 0), 16 + min(tx, 0))
        torch.testing.assert_close(out[i][:, ys, xs], want[:, ys, xs], atol=1e-5, rtol=0)


def test_rotation_by_a_quarter_turn_is_rot90():
    pipe = pipe_for("rotate")
    x = images(2)
    p = identity_params(2)
    p["rotate_pre"] = torch.tensor([math.pi / 2, 0.0])
    p["rotate_post"] = torch.tensor([0.0, -math.pi / 2])
    out = pipe.apply(x, p)
    torch.testing.assert_close(out[0], torch.rot90(x[0], 1, dims=(1, 2)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], torch.rot90(x[1], -1, dims=(1, 2)), atol=1e-5, rtol=0)


def test_isotropic_half_scale_is_average_pooling_in_the_centre():
    pipe = pipe_for("scale")
    x = images(2)
    p = identity_params(2)
    p["scale"] = torch.tensor([0.5, 1.0])
    out = pipe.apply(x, p)
    torch.testing.assert_close(out[0][:, 4:12, 4:12], F.avg_pool2d(x[:1], 2)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1], atol=1e-5, rtol=0)


def test_anisotropic_scale_acts_as_scale_on_x_only_images():
    x = torch.rand(1, 3, 1, 16).expand(2, 3, 16, 16) * 2 - 1  # constant along y
    p = identity_params(2)
    p["aniso"] = torch.tensor([0.5, 0.7])
    q = identity_params(2)
    q["scale"] = torch.tensor([0.5, 0.7])
    torch.testing.assert_close(pipe_for("aniso").apply(x, p), pipe_for("scale").apply(x, q), atol=1e-5, rtol=0)


def test_half_pixel_translation_averages_neighbours():
    p = identity_params(1)
    p["xfrac"] = torch.tensor([[0.5, 0.0]])
    x = images(1)
    out = pipe_for("xfrac").apply(x, p)
    torch.testing.assert_close(out[..., 1:], (x[..., 1:] + x[..., :-1]) / 2, atol=1e-5, rtol=0)


def test_brightness_and_contrast():
    x = images(6)
    pipe = pipe_for("brightness")
    params = pipe.sample_params(6, 16, 16)
    out = pipe.apply(x, params)
    torch.testing.assert_close(out - x, params["brightness"].view(6, 1, 1, 1).expand_as(x), atol=1e-5, rtol=0)
    pipe = pipe_for("contrast")
    params = pipe.sample_params(6, 16, 16)
    torch.testing.assert_close(pipe.apply(x, params), x * params["contrast"].view(6, 1, 1, 1), atol=1e-5, rtol=0)


def test_luma_flip_inverts_luma_and_keeps_chroma():
    x = images(2)
    p = identity_params(2)
    p["lumaflip"] = torch.tensor([1.0, 0.0])
    out = pipe_for("lumaflip").apply(x, p)
    luma = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(out[0], (x - 2 * luma)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.mean(dim=1)[0], -luma[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1], atol=1e-5, rtol=0)


def test_hue_rotation_by_a_third_turn_permutes_channels():
    x = images(3)
    p = identity_params(3)
    p["hue"] = torch.tensor([2 * math.pi / 3, -2 * math.pi / 3, 0.7])
    out = pipe_for("hue").apply(x, p)
    torch.testing.assert_close(out[0], x[0, [2, 0, 1]], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1, [1, 2, 0]], atol=1e-5, rtol=0)
    # Any hue rotation keeps luma and the chroma's length.
    chroma = lambda t: t - t.mean(dim=0, keepdim=True)  # noqa: E731
    torch.testing.assert_close(out[2].mean(0), x[2].mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(chroma(out[2]).norm(dim=0), chroma(x[2]).norm(dim=0), atol=1e-5, rtol=0)


def test_saturation_scales_chroma_about_luma():
    x = images(4)
    pipe = pipe_for("saturation")
    params = pipe.sample_params(4, 16, 16)
    luma = x.mean(dim=1, keepdim=True)
    want = luma + (x - luma) * params["saturation"].view(4, 1, 1, 1)
    torch.testing.assert_close(pipe.apply(x, params), want, atol=1e-5, rtol=0)


def test_each_transform_fires_with_probability_p():
    pipe = AugmentPipe(p=0.5)
    gen = torch.Generator().manual_seed(0)
    params = pipe.sample_params(4000, 16, 16, generator=gen)
    for name, identity in (("brightness", 0.0), ("contrast", 1.0), ("scale", 1.0), ("hue", 0.0)):
        assert abs((params[name] != identity).float().mean().item() - 0.5) < 0.04
    assert abs((params["rotate_pre"] != 0).float().mean().item() - (1 - math.sqrt(0.5))) < 0.04
    off = AugmentPipe(AugmentConfig(transforms="brightness"), p=1.0).sample_params(64, 16, 16)
    assert torch.all(off["scale"] == 1) and torch.all(off["brightness"] != 0)


def test_controller_raises_p_when_d_is_overconfident_on_reals_and_lowers_it_otherwise():
    pipe = AugmentPipe()
    ada = AdaController(pipe, target=0.6, interval=4, speed_kimg=500)
    step = 64 * 4 / 500_000
    for i in range(4):
        ada.observe(torch.full((64, 1), 3.0))  # every real judged real: E[sign] = 1 > 0.6
        p = ada.step(64)
        assert p == (step if i == 3 else 0.0)
    assert float(pipe.p) == pytest.approx(step)
    for _ in range(4):
        ada.observe(torch.cat([torch.ones(32), -torch.ones(32)]))  # E[sign] = 0 < 0.6
        ada.step(64)
    assert ada.p == 0.0 and float(pipe.p) == 0.0
    for _ in range(8):  # clamped at 0
        ada.observe(-torch.ones(64))
        ada.step(64)
    assert ada.p == 0.0
    hi = AdaController(AugmentPipe(p=0.99995), interval=1)
    hi.observe(torch.ones(64))
    assert hi.step(64) == 1.0  # clamped at 1


def test_controller_state_round_trip_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    logits = [torch.randn(16) + 2.0 for _ in range(11)]
    a = AdaController(AugmentPipe(), interval=4, speed_kimg=1.0)
    for t in logits[:6]:
        a.observe(t)
        a.step(16)
    torch.save(a.state_dict(), tmp_path / "ada.pt")
    pipe_b = AugmentPipe()
    b = AdaController(pipe_b, interval=4, speed_kimg=1.0)
    b.load_state_dict(torch.load(tmp_path / "ada.pt", weights_only=True))
    assert float(pipe_b.p) == pytest.approx(a.p)
    for t in logits[6:]:
        a.observe(t)
        b.observe(t)
        assert a.step(16) == b.step(16)
    assert a.state_dict() == b.state_dict() and a.p > 0


def test_controller_resume_keeps_the_new_settings():
    """A resume restores p and the counters, but a changed speed or target (train.ada_kimg,
    train.ada_target) takes effect: p then moves by the new step size."""
    a = AdaController(AugmentPipe(), interval=1, speed_kimg=500.0)
    for _ in range(3):
        a.observe(torch.ones(16))
        a.step(16)
    b = AdaController(AugmentPipe(), target=0.9, interval=1, speed_kimg=50.0)
    b.load_state_dict(a.state_dict())
    assert b.p == a.p and b.steps == 3 and (b.target, b.speed_kimg) == (0.9, 50.0)
    p0 = b.p
    b.observe(torch.ones(16))
    assert b.step(16) == pytest.approx(p0 + 16 / (50.0 * 1000))
