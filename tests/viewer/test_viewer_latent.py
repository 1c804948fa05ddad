"""Latent interpolation in the viewer: endpoints exact, lerp in W and slerp in Z against the formulas."""

import math

import numpy as np
import pytest
import torch
from viewer_testlib import tiny_cfg, tiny_model

from core.checkpoint import build_generator
from core.errors import UserError
from core.latents import along_keyframes
from core.runtime import z_from_seed
from viewer.latent import Keyframe, LatentResolver, LatentSpec, keyframe_at, load_w, save_w
from viewer.state import LatentState


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _w(G, seed, psi=1.0):
    return G.mapping(z_from_seed(seed, G.cfg.generator.z_dim), psi=psi)


def test_single_seed_is_the_mapping(model):
    res = LatentResolver(model.G)
    assert torch.equal(res.resolve(LatentSpec.from_seed(5, psi=0.7)), _w(model.G, 5, 0.7))


def test_lerp_w_endpoints_exact_and_midpoint(model):
    G, res = model.G, LatentResolver(model.G)
    keys = (Keyframe(seed=3), Keyframe(seed=8), Keyframe(seed=11))
    w3, w8, w11 = _w(G, 3), _w(G, 8), _w(G, 11)
    assert torch.equal(res.resolve(LatentSpec(keys, 0.0)), w3)
    assert torch.equal(res.resolve(LatentSpec(keys, 0.5)), w8)
    assert torch.equal(res.resolve(LatentSpec(keys, 1.0)), w11)
    t = 0.3  # 60% of the way from key 0 to key 1
    expected = w3 * (1 - 0.6) + w8 * 0.6
    assert torch.allclose(res.resolve(LatentSpec(keys, t)), expected, atol=1e-6)
    looped = res.resolve(LatentSpec(keys, 5 / 6, loop=True))  # halfway from key 2 back to key 0
    assert torch.allclose(looped, (w11 + w3) / 2, atol=1e-6)


def test_slerp_z_formula(model):
    G, res = model.G, LatentResolver(model.G)
    keys = (Keyframe(seed=1), Keyframe(seed=2))
    za, zb = z_from_seed(1, 16).double(), z_from_seed(2, 16).double()
    t = 0.25
    omega = math.acos(float((za / za.norm()) @ (zb / zb.norm()).T))
    direction = (math.sin((1 - t) * omega) * za / za.norm() + math.sin(t * omega) * zb / zb.norm()) / math.sin(omega)
    z = direction * ((1 - t) * za.norm() + t * zb.norm())
    expected = G.mapping(z.float())
    assert torch.allclose(res.resolve(LatentSpec(keys, t, "slerp-z")), expected, atol=1e-5)
    assert torch.equal(res.resolve(LatentSpec(keys, 1.0, "slerp-z")), _w(G, 2))


def test_keyframe_at():
    keys = tuple(Keyframe(seed=s) for s in range(3))
    assert keyframe_at(LatentSpec(keys, 0.5)) == 1
    assert keyframe_at(LatentSpec(keys, 0.4)) is None
    assert keyframe_at(LatentSpec(keys, 1.0, loop=True)) == 0


def test_saved_w_roundtrip_and_errors(model, tmp_path):
    G, res = model.G, LatentResolver(model.G)
    w = _w(G, 4, 0.5)
    save_w(tmp_path / "a.npy", w)
    assert torch.equal(load_w(tmp_path / "a.npy", 16), w)
    spec = LatentSpec((Keyframe(path=str(tmp_path / "a.npy")), Keyframe(seed=4)), 0.5, psi=0.5)
    assert torch.allclose(res.resolve(spec), w, atol=1e-6)  # both ends are the same latent
    with pytest.raises(UserError, match="no z"):
        res.resolve(LatentSpec(spec.keyframes, 0.5, "slerp-z"))
    np.save(tmp_path / "bad.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(UserError, match="shape"):
        load_w(tmp_path / "bad.npy", 16)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(UserError):
        load_w(tmp_path / "junk.npy", 16)


def test_state_builds_specs():
    st = LatentState(seed=7, psi=0.6)
    assert st.spec() == LatentSpec.from_seed(7, psi=0.6)
    st.interp, st.keyframes, st.t = True, [{"seed": 1}, {"seed": 2}], 0.4
    spec = st.spec()
    assert [k.seed for k in spec.keyframes] == [1, 2] and spec.t == 0.4
    st.pose_mode = "camera"
    assert st.spec(pose_cond=True, camera_pose=(0.1, 1.4)).pose == (0.1, 1.4)
    assert st.spec(pose_cond=False, camera_pose=(0.1, 1.4)).pose is None
    assert st.spec(c_dim=3).class_idx == 0 and st.spec().class_idx is None


def test_keyframes_of_a_conditional_model_carry_their_own_class():
    cfg = tiny_cfg()
    cfg.generator.c_dim = 3
    G = build_generator(cfg, seed=1).eval().requires_grad_(False)
    res = LatentResolver(G)
    onehot = torch.eye(3)

    def w(seed, c):
        return G.mapping(z_from_seed(seed, 16), c[None])

    keys = (Keyframe(seed=4, class_idx=0), Keyframe(seed=9, class_idx=2), Keyframe(seed=5))
    spec = LatentSpec(keys, 0.0, class_idx=1)  # the third keyframe has no class of its own: the spec's
    assert torch.equal(res.resolve(spec), w(4, onehot[0]))
    assert torch.equal(res.resolve(LatentSpec(keys, 0.5, class_idx=1)), w(9, onehot[2]))
    assert torch.equal(res.resolve(LatentSpec(keys, 1.0, class_idx=1)), w(5, onehot[1]))
    mid = res.resolve(LatentSpec(keys, 0.25, class_idx=1))  # lerp-w: halfway between the two classes' w
    assert torch.allclose(mid, (w(4, onehot[0]) + w(9, onehot[2])) / 2, atol=1e-6)
    # slerp-z: z on the sphere, the labels blended linearly, then one mapping
    za, zb = z_from_seed(4, 16), z_from_seed(9, 16)
    t = 0.3
    expected = G.mapping(along_keyframes([za, zb], t, "slerp"), ((1 - t) * onehot[0] + t * onehot[2])[None])
    got = res.resolve(LatentSpec(keys[:2], t, "slerp-z", class_idx=1))
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, G.mapping(along_keyframes([za, zb], t, "slerp"), onehot[1][None]), atol=1e-3)


def test_state_keyframe_classes():
    st = LatentState(class_idx=1, interp=True, keyframes=[{"seed": 1, "class": 2}, {"seed": 2, "class": 9},
                                                         {"seed": 3}, {"seed": 4, "class": "x"}])
    assert [k.class_idx for k in st.spec(c_dim=3).keyframes] == [2, 2, None, None]  # 9 clamped to 2
    assert [k.class_idx for k in st.spec().keyframes] == [None] * 4  # an unconditional model ignores them
