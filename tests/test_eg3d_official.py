"""An official EG3D snapshot, imported, computes what the official code computes.

The fixtures in tests/fixtures/eg3d_official/ were written by running NVlabs/eg3d (7cf1fd1) on a CPU:
a tiny FFHQ-config snapshot (planes 32^2, neural render 32^2, SuperresolutionHybrid2X to 128^2) and
its G_ema's outputs for fixed inputs (README there). Tolerances are the fixture README's: near
float32 rounding, and below what the official det=True importance levels would move the renders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import load_generator
from core.networks.eg3d import EG3DGenerator, camera_label, label_cameras, pose_label

FIX = Path(__file__).parent / "fixtures" / "eg3d_official"
SNAP = FIX / "snapshot_ffhq_tiny.pkl"


@pytest.fixture(scope="module")
def expected():
    with np.load(FIX / "expected_ffhq_tiny.npz", allow_pickle=False) as e:
        return {k: (e[k] if k in ("meta_json", "point_kind") else torch.from_numpy(e[k])) for k in e.files}


@pytest.fixture(scope="module")
def model():
    return load_generator(str(SNAP))


@pytest.fixture(scope="module")
def renders(model, expected):
    G, _ = model
    with torch.no_grad():
        w = G.mapping(expected["z"], expected["c_cond"], psi=0.7)
        planes = G.planes(w)
        outs = [G.render(planes, label_cameras(expected["cam_c"][k:k + 1].expand(2, -1), 2.25, 3.3), w=w)
                for k in range(2)]
    return {key: torch.stack([o[key] for o in outs], dim=1) for key in outs[0]}


def test_config_read_from_the_pickle(model, expected):
    G, info = model
    meta = json.loads(str(expected["meta_json"]))
    g, r = G.cfg.generator, G.cfg.render
    assert isinstance(G, EG3DGenerator) and g.family == "eg3d"
    assert g.plane_res == meta["tp_res"] == 32  # from the backbone's blocks, not TriPlaneGenerator's kwargs
    assert g.neural_res == meta["neural_rendering_resolution"] == 32
    assert g.sr_module == "2x" and tuple(g.sr_channels) == tuple(meta["sr_widths"])
    assert g.mapping_hidden == meta["mapping_layer_features"] == 16
    assert (r.num_coarse, r.num_fine) == (48, 48) and (G.cfg.camera.near, G.cfg.camera.far) == (2.25, 3.3)
    assert g.cube_scale == 0.5 and g.density_shift == -1.0 and G.cfg.img_resolution == 128
    assert sum(p.numel() for p in G.parameters()) == 153_514
    assert info["meta"]["source_kind"] == "official-eg3d"
    assert np.allclose(info["meta"]["dataset_label_std"], expected["dataset_label_std"].numpy())


def test_mapping(model, expected):
    G, _ = model
    with torch.no_grad():
        for psi, key in ((1.0, "w_psi1"), (0.7, "w_psi07")):
            assert (G.mapping(expected["z"], expected["c_cond"], psi=psi) - expected[key]).abs().max() < 1e-4
    assert (G.mapping_network.w_avg - expected["w_avg"]).abs().max() == 0


def test_planes_in_the_official_layout(model, expected):
    G, _ = model
    with torch.no_grad():
        planes = G.planes(G.mapping(expected["z"][:1], expected["c_cond"][:1], psi=0.7))
    want = expected["planes"]
    assert planes.shape == (1, 3, 32, 32, 32)
    assert (planes.reshape(1, 96, 32, 32) - want).abs().max() < 1e-3 * want.abs().max()


def test_field_at_every_kind_of_point(model, expected):
    """Inside, outside, on faces, edges, corners, at texel centres: the lookup's conventions."""
    G, _ = model
    pts = expected["points"][None].expand(2, -1, -1).contiguous()
    with torch.no_grad():
        planes = G.planes(G.mapping(expected["z"], expected["c_cond"], psi=0.7))
        feats, raw = G.decode_features(planes, pts)
        decoded = G.decode(planes, pts)
        rgb, sigma = G.query(planes, pts)
    assert (feats - expected["field_features"]).abs().max() < 1e-4
    assert (raw - expected["field_sigma_raw"]).abs().max() < 1e-4
    assert (rgb - expected["query_rgb"]).abs().max() < 1e-4
    assert (decoded[..., :3] - expected["query_rgb"]).abs().max() < 1e-4
    assert (decoded[..., 3] - expected["field_sigma_raw"]).abs().max() < 1e-4
    assert (sigma - expected["query_sigma"]).abs().max() < 1e-4
    kinds = {k.decode() for k in expected["point_kind"]}
    assert {"outside", "face", "corner", "edge", "texel_centre"} <= kinds


@pytest.mark.parametrize("ours,theirs,tol", [("image_raw", "image_raw", 5e-4), ("depth", "image_depth", 5e-4),
                                             ("opacity", "opacity", 5e-4), ("image", "image", 2e-3),
                                             ("image_raw_returned", "image_raw_as_returned", 5e-4)])
def test_renders(renders, expected, ours, theirs, tol):
    assert renders[ours].shape == expected[theirs].shape
    assert (renders[ours] - expected[theirs]).abs().max() < tol


def test_feature_image(renders, expected):
    assert (renders["image_feature"][:1, :1] - expected["image_feature"]).abs().max() < 5e-4


def test_tolerance_tells_the_importance_levels_apart(renders, expected):
    """The fixture's official det=True levels differ by more than the tolerance: the check can fail."""
    assert (renders["image_raw"] - expected["image_raw_det_linspace"]).abs().max() > 5e-4


def test_labels_round_trip(expected):
    cams = label_cameras(expected["cam_c"], 2.25, 3.3)
    assert torch.allclose(camera_label(cams), expected["cam_c"])
    # our pose label of EG3D's frontal pose (yaw pi/2, pitch pi/2) is LookAtPoseSampler's (latent 0)
    frontal = pose_label(torch.tensor([np.pi / 2]), torch.tensor([np.pi / 2]), 2.7, (0, 0, 0.2), 13.372)
    assert (frontal[:, :16] - expected["c_cond"][:1, :16]).abs().max() < 1e-5
    assert (frontal[:, 16:] - expected["c_cond"][:1, 16:]).abs().max() < 1e-3


def test_pose_label_matches_eg3d_angles(expected):
    """Latent 1's conditioning camera is LookAtPoseSampler(pi/2 + 0.3, pi/2 - 0.15): h = pi - yaw,
    v = pi (1 - cos pitch) / 2 in our angles."""
    h, v = np.pi / 2 + 0.3, np.pi / 2 - 0.15
    yaw, pitch = np.pi - h, np.arccos(1 - 2 * v / np.pi)
    label = pose_label(torch.tensor([yaw]), torch.tensor([pitch]), 2.7, (0, 0, 0.2), 13.372)
    assert (label[:, :16] - expected["c_cond"][1:, :16]).abs().max() < 1e-5


def test_converted_checkpoint_is_the_same_model(tmp_path, model, expected):
    """core.import_official writes our safe checkpoint format; it loads to the same EG3D generator."""
    from core.import_official import main
    assert main([str(SNAP), "--out", str(tmp_path / "eg3d.pt")]) == 0
    G2, info = load_generator(str(tmp_path / "eg3d.pt"))
    G, _ = model
    assert isinstance(G2, EG3DGenerator) and info["meta"]["source_kind"] == "official-eg3d"
    for (k, a), (k2, b) in zip(G.state_dict().items(), G2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_discriminator_logits(expected):
    """The snapshot's dual discriminator, converted, gives the official logits on the official
    renders (camera 0, with its label; the raw image resized with EG3D's antialiased filter)."""
    from core.networks.dual_discriminator import DualDiscriminator
    from core.official.eg3d import discriminator_state
    from core.official.load import read_snapshot
    state, args = discriminator_state(read_snapshot(SNAP)["D"])
    D = DualDiscriminator(**args).eval()
    D.load_state_dict(state)
    c = expected["cam_c"][:1].expand(2, -1)
    with torch.no_grad():
        logits = D(expected["image"][:, 0], expected["image_raw"][:, 0], c)[:, 0]
    assert (logits - expected["d_logits_cam0"]).abs().max() < 1e-4 * max(1.0, expected["d_logits_cam0"].abs().max())


def test_training_state_keeps_the_discriminator(tmp_path):
    """--training-state keeps G, the dual D (its config read from the record) and the image count
    the file name gives; the D loads into a DualDiscriminator built from the converted config."""
    import shutil

    from core.checkpoint import load_checkpoint
    from core.import_official import main
    from core.networks.dual_discriminator import DualDiscriminator
    snap = tmp_path / "network-snapshot-000120.pkl"
    shutil.copy(SNAP, snap)
    assert main([str(snap), "--out", str(tmp_path / "eg3d.pt"), "--training-state"]) == 0
    data = load_checkpoint(tmp_path / "eg3d.pt")
    d = data["config"]["discriminator"]
    assert d["variant"] == "dual" and d["camera_cond"] and (d["channel_base"], d["channel_max"]) == (256, 8)
    assert data["progress"]["cur_nimg"] == 120_000 and set(data) >= {"G", "D", "G_ema"}
    D = DualDiscriminator(25, data["config"]["img_resolution"], channel_base=d["channel_base"],
                          channel_max=d["channel_max"], conv_clamp=d["conv_clamp"], mbstd_group=d["mbstd_group"])
    D.load_state_dict(data["D"])
