"""Typed configs: presets hold the reference numbers, every field is documented, dicts round-trip."""

import dataclasses
import math

import pytest

from core.config import PRESETS, ModelConfig, apply_override, field_doc, from_dict, get_preset, to_dict
from core.errors import UserError


def _all_fields(cfg, prefix=""):
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        yield prefix + f.name, cfg, f.name
        if dataclasses.is_dataclass(v):
            yield from _all_fields(v, prefix + f.name + ".")


def test_every_field_has_a_doc():
    for name in PRESETS:
        for path, obj, field in _all_fields(get_preset(name)):
            assert field_doc(obj, field).strip(), path


def test_reference_numbers():
    f = get_preset("ffhq512")
    assert (f.img_resolution, f.generator.plane_res, f.generator.cube_scale) == (512, 512, 0.2)
    assert (f.camera.fov_deg, f.camera.radius, f.camera.near, f.camera.far) == (12.0, 1.0, 0.88, 1.12)
    assert (f.render.num_coarse, f.render.num_fine, f.render.background) == (48, 48, "zero")
    assert (f.generator.z_dim, f.generator.w_dim, f.generator.mapping_layers, f.generator.mapping_lr_mult) == \
        (512, 512, 2, 0.01)
    assert (f.generator.plane_channels, f.generator.decoder_hidden, f.generator.density_shift) == (32, 64, 0.0)
    assert f.generator.pose_cond
    m = get_preset("megascans256")
    assert (m.img_resolution, m.generator.plane_res, m.generator.cube_scale) == (256, 512, 0.475)
    assert (m.camera.fov_deg, m.camera.near, m.camera.far, m.render.background) == (30.0, 0.75, 1.25, "white")
    assert m.camera.dist == "spherical_uniform" and m.camera.yaw_std == pytest.approx(math.pi)
    d = get_preset("demo")
    assert d.img_resolution == 64 and d.render.num_coarse + d.render.num_fine == 48


def test_dict_round_trip_and_strictness():
    cfg = get_preset("megascans256")
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    bad = to_dict(cfg)
    bad["render"]["num_corse"] = 3
    with pytest.raises(UserError, match="num_corse"):
        from_dict(ModelConfig, bad)


def test_overrides_parse_by_type():
    cfg = get_preset("demo")
    apply_override(cfg, "generator.plane_res=128")
    apply_override(cfg, "render.far_opaque=true")
    apply_override(cfg, "camera.look_at=0,0.1,0")
    assert cfg.generator.plane_res == 128 and cfg.render.far_opaque is True
    assert cfg.camera.look_at == (0.0, 0.1, 0.0)
    for bad in ("generator.plane_res=big", "generator.nope=1", "render.num_coarse"):
        with pytest.raises(UserError):
            apply_override(cfg, bad)
    with pytest.raises(UserError, match="unknown preset"):
        get_preset("ffhq1024")


def test_choice_fields_are_typed_and_checked():
    """Every choice field is a Literal: a typo is one line where the config is built or overridden,
    never a silent fallback; the viewer's form offers the same choices."""
    from typing import Literal, get_args, get_origin, get_type_hints

    from core.config import PRESETS, ModelConfig, apply_override, check_choices, from_dict, get_preset, to_dict
    from core.config_cli import config_fields
    from core.errors import UserError
    from viewer.train_form import form_field

    for name in PRESETS:
        check_choices(get_preset(name))
    cfg = get_preset("demo")
    with pytest.raises(UserError, match="'datasets' is not a choice for config key 'train.camera_source': "
                                        "choose one of prior, dataset"):
        apply_override(cfg, "train.camera_source=datasets")
    assert cfg.train.camera_source == "prior"  # unchanged
    apply_override(cfg, "train.camera_source=dataset")
    data = to_dict(cfg)
    data["render"]["background"] = "grey"
    with pytest.raises(UserError, match="config key 'render.background' is 'grey': choose one of white, black, zero"):
        from_dict(ModelConfig, data)
    typed = [(n, o, f) for n, o, f in config_fields(ModelConfig()) if get_origin(get_type_hints(type(o))[f.name]) is Literal]
    assert {n for n, _, _ in typed} >= {"train.camera_source", "train.patch_dist", "camera.dist", "generator.bg_model",
                                       "render.kernel_impl", "discriminator.variant"}
    for n, o, f in typed:
        assert form_field(n).choices == get_args(get_type_hints(type(o))[f.name])
