"""python -m core.dataset_tool: synthetic, convert (both camera forms) and render (EGL, skipped without it)."""

from __future__ import annotations

import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cameras as camlib
from core.config import get_preset
from core.data import ImageDataset
from core.data.synthetic import OBJECT_RADIUS, Primitive, object_field
from core.dataset_tool import default_radius, main
from core.errors import UserError, cli_main
from core.render.rays import make_rays
from core.render.renderer import render_rays


def _json(zp: Path) -> dict:
    with zipfile.ZipFile(zp) as zf:
        return json.loads(zf.read("dataset.json"))


def test_synthetic_cli(tmp_path, capsys):
    out = tmp_path / "s.zip"
    assert main(["synthetic", "--out", str(out), "--num-objects", "2", "--views", "2", "--res", "16"]) == 0
    ds = ImageDataset(str(out))
    assert len(ds) == 4 and ds.resolution == 16
    meta = _json(out)
    assert all(len(v) == 3 and v[2] == 0.0 for v in meta["camera_angles"].values())
    assert not (tmp_path / "s.zip.part").exists()
    assert cli_main(main)(["synthetic", "--out", str(tmp_path / "s.tar")]) == 2
    assert "must be a .zip" in capsys.readouterr().err


def _photos(root: Path, n: int = 4) -> list[np.ndarray]:
    """Non-square photos (24 x 16) whose centre square is a known colour."""
    arrs = []
    for i in range(n):
        a = np.zeros((16, 24, 3), np.uint8)
        a[:, 4:20] = (40 * i, 200 - 30 * i, 90)
        arrs.append(a)
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(root / (f"p{i}.png" if i % 2 else f"p{i}.jpg"), quality=98)
    return arrs


def test_convert_epigraf_form(tmp_path):
    arrs = _photos(tmp_path / "photos")
    angles = {f"photos/p{i}.png": [0.2 * i - 0.3, 1.5 + 0.05 * i, 0] for i in range(4)}
    cams = tmp_path / "cams.json"
    cams.write_text(json.dumps({"camera_angles": angles, "labels": {f"p{i}": i % 2 for i in range(4)}}))
    out = tmp_path / "conv.zip"
    assert main(["convert", "--images", str(tmp_path / "photos"), "--cameras", str(cams), "--out", str(out),
                 "--res", "8"]) == 0
    ds = ImageDataset(str(out))
    assert len(ds) == 4 and ds.resolution == 8 and ds.label_dim == 2
    for i in range(4):
        item = ds[i]
        assert ds.images[i] == f"p{i}.png"
        assert torch.allclose(item["angles"], torch.tensor(angles[f"photos/p{i}.png"][:2]))
        colour = torch.tensor(arrs[i][8, 12], dtype=torch.float32)[:, None, None]
        assert (item["image"][:, :, 1:-1].float() - colour).abs().max() <= 6  # centre crop: no black bars (JPEG
        # chroma bleeds one output pixel in from the crop edge)
        assert item["label"].argmax() == i % 2


def test_convert_eg3d_form(tmp_path):
    _photos(tmp_path / "ph")
    yaw, pitch = torch.tensor([0.3, -0.5, 0.1, 0.9]), torch.tensor([1.4, 1.7, 1.55, 1.2])
    ours = camlib.from_angles(yaw, pitch, 1.0, 18.0)
    labels = camlib.to_eg3d_labels(ours)  # their world: pivot (0, 0, 0.2), radius 2.7
    cams = tmp_path / "ph" / "dataset.json"  # the camera file may live inside the image folder
    cams.write_text(json.dumps({"labels": [[f"p{i}.png", labels[i].tolist()] for i in range(4)]}))
    out = tmp_path / "eg.zip"
    assert main(["convert", "--images", str(tmp_path / "ph"), "--cameras", str(cams), "--out", str(out),
                 "--res", "8"]) == 0
    meta = _json(out)
    conv = meta["conversion"]
    assert conv["from"] == "eg3d" and conv["pivot"] == [0.0, 0.0, 0.2] and abs(conv["scale"] - 1 / 2.7) < 1e-9
    assert abs(conv["fov_deg"]["mean"] - 18.0) < 1e-3 and conv["look_at_residual_deg"]["max"] < 0.05
    assert np.allclose(np.asarray(conv["rotation"]), [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-9)
    ds = ImageDataset(str(out))
    assert torch.allclose(ds.camera_table(), torch.stack([yaw, pitch], -1), atol=1e-4)


def test_convert_errors(tmp_path):
    _photos(tmp_path / "q")
    cams = tmp_path / "c.json"
    cams.write_text(json.dumps({"camera_angles": {f"p{i}.png": [0.1 * i + 0.1, 1.5, 0] for i in range(3)}}))
    with pytest.raises(UserError, match="p3.png.*no camera entry"):
        main(["convert", "--images", str(tmp_path / "q"), "--cameras", str(cams), "--out", str(tmp_path / "o.zip")])
    with pytest.raises(UserError, match="nope.json"):
        main(["convert", "--images", str(tmp_path / "q"), "--cameras", str(tmp_path / "nope.json"),
              "--out", str(tmp_path / "o.zip")])
    assert not (tmp_path / "o.zip").exists() and not (tmp_path / "o.zip.part").exists()


# --------------------------------------------------------------------------------------------------
# render (needs EGL)


def _egl_or_skip():
    pytest.importorskip("trimesh", reason="pip install trimesh")
    from core.data import mesh_render

    try:
        mesh_render.egl_context()
    except UserError as e:
        pytest.skip(str(e))
    return mesh_render


def _project(c2w: torch.Tensor, k: torch.Tensor, x: np.ndarray) -> np.ndarray:
    """Independent pinhole oracle: world point [3] -> pixel (col, row) of an image of side 1."""
    pc = np.linalg.inv(c2w.double().numpy()) @ np.append(x, 1.0)
    k = k.double().numpy()
    return np.array([k[0, 2] + k[0, 0] * pc[0] / -pc[2], k[1, 2] - k[1, 1] * pc[1] / -pc[2]])


def _centroid(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5]) / img.shape[0]  # pixel centres, side 1


def test_mesh_renderer_matches_our_cameras_and_volume_renderer():
    mr = _egl_or_skip()
    import trimesh

    centre = np.array([0.04, 0.07, 0.12])
    ball = trimesh.creation.icosphere(subdivisions=4, radius=0.06)
    ball.apply_translation(centre)
    ball.visual.face_colors = [230, 20, 20, 255]
    res = 48
    yaw, pitch = torch.tensor([0.0, 1.2, -2.0, 0.4]), torch.tensor([1.5708, 0.8, 2.2, 1.7])
    cams = camlib.from_angles(yaw, pitch, 1.0, 30.0, cfg=get_preset("demo").camera)
    imgs = mr.MeshRenderer(res, supersample=1).render(mr.mesh_to_data(ball), cams)
    o, d = make_rays(cams, res)
    prim = Primitive("sphere", centre.tolist(), [0.06] * 3, np.eye(3).tolist(), [1, 0, 0], 0.0)
    vol = render_rays(object_field([prim]), o, d, cams.near, cams.far, 32, 32, far_opaque=False,
                      deterministic=True)["opacity"].reshape(-1, res, res).numpy() > 0.5
    for i in range(len(cams)):
        mask = imgs[i].astype(int).sum(-1) < 600  # not white
        assert mask.sum() > 20
        assert np.abs(_centroid(imgs[i], mask) - _project(cams.cam2world[i], cams.intrinsics[i], centre)).max() < 1.0 / res
        iou = (mask & vol[i]).sum() / (mask | vol[i]).sum()
        assert iou > 0.85, iou
    # yaw 0 looks from +x at the origin: +z is on the image's left, +y at the top
    ys, xs = np.nonzero(imgs[0].astype(int).sum(-1) < 600)
    assert xs.mean() < res / 2 - 3 and ys.mean() < res / 2


def test_render_cli_angles_match_images(tmp_path):
    _egl_or_skip()
    import trimesh

    meshes = tmp_path / "meshes"
    (meshes / "000").mkdir(parents=True)
    blob = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    blob.export(meshes / "000" / "000.obj")  # no colour in the file: the .urdf beside it has one
    (meshes / "000" / "000.urdf").write_text('<robot><link><visual><geometry><mesh filename="000.obj"/></geometry>'
                                             '<material name="m"><color rgba="0.1 0.8 0.1 1"/></material>'
                                             '</visual></link></robot>')
    body = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    body.visual.vertex_colors = [200, 200, 200, 255]
    marker = trimesh.creation.icosphere(subdivisions=3, radius=0.12)
    marker.apply_translation([0.0, 0.0, 0.5])
    marker.visual.vertex_colors = [230, 10, 10, 255]
    trimesh.util.concatenate([body, marker]).export(meshes / "marked.ply")
    out = tmp_path / "r.zip"
    assert main(["render", "--meshes", str(meshes), "--out", str(out), "--views", "24", "--res", "32"]) == 0
    meta = _json(out)
    assert meta["render"]["radius"] == pytest.approx(1.0) and meta["render"]["fov_deg"] == 30.0
    ds = ImageDataset(str(out), camera_cfg=get_preset("demo").camera)
    assert len(ds) == 48 and ds.resolution == 32
    green = ds[0]["image"].float()
    assert green[1, 16, 16] > 1.5 * green[0, 16, 16]  # the .urdf colour was used
    obj = meta["objects"]["00001_marked"]
    # where the marker's centre went: bbox centre to the origin, unit cube, fit scale
    tip = (np.array([0.0, 0.0, 0.5]) - np.asarray(obj["bbox_center"])) * obj["unit_cube_scale"] * obj["fit_scale"]
    checked = 0
    for i in range(24, 48):
        item = ds[i]
        cam_dir = item["cam2world"][:3, 3].double().numpy()
        if np.dot(cam_dir / np.linalg.norm(cam_dir), tip / np.linalg.norm(tip)) < 0.5:
            continue  # the marker faces away or is seen edge-on
        img = item["image"].permute(1, 2, 0).numpy().astype(int)
        red = (img[..., 0] > 120) & (img[..., 1] < 60) & (img[..., 2] < 60)
        want = _project(item["cam2world"], item["intrinsics"], tip)
        assert np.abs(_centroid(img, red) - want).max() < 2.0 / 32, (i, item["angles"])
        checked += 1
    assert checked >= 3
    assert default_radius(30.0) == pytest.approx(1.0) and OBJECT_RADIUS < math.sin(math.radians(15))


def test_render_without_egl_fails_with_one_line(tmp_path, monkeypatch, capsys):
    from core.data import mesh_render

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    monkeypatch.setattr(mesh_render, "_CTX", None)
    monkeypatch.setitem(sys.modules, "moderngl", None)  # import fails as if not installed
    assert cli_main(main)(["render", "--meshes", str(tmp_path / "m"), "--out", str(tmp_path / "o.zip")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "apt-get install" in err and "pip install moderngl" in err


def test_render_class_labels_one_class_per_object(tmp_path):
    _egl_or_skip()
    import trimesh

    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "a_broken.ply").write_bytes(b"ply\nnot a mesh at all\n")  # skipped: leaves no gap in the classes
    ball = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    ball.visual.vertex_colors = [20, 200, 20, 255]
    ball.export(meshes / "b_ball.ply")
    box = trimesh.creation.box(extents=[0.8, 0.5, 0.6])
    box.visual.vertex_colors = [200, 20, 20, 255]
    box.export(meshes / "c_box.ply")
    plain, labelled = tmp_path / "plain.zip", tmp_path / "labelled.zip"
    args = ["--meshes", str(meshes), "--views", "3", "--res", "16", "--seed", "5"]
    assert main(["render", "--out", str(plain), *args]) == 0
    assert main(["render", "--out", str(labelled), *args, "--class-labels"]) == 0
    meta = _json(labelled)
    assert meta["class_names"] == ["b_ball", "c_box"]
    folders = sorted(meta["objects"])
    assert folders == ["00001_b_ball", "00002_c_box"]  # the broken mesh was tried first (00000) and skipped
    assert meta["labels"] == {f"{f}/view{v:03d}.png": k for k, f in enumerate(folders) for v in range(3)}
    assert "labels" not in _json(plain)
    # the labels change nothing else: the same images and cameras
    with zipfile.ZipFile(plain) as zp, zipfile.ZipFile(labelled) as zl:
        pngs = sorted(n for n in zp.namelist() if n.endswith(".png"))
        assert pngs == sorted(n for n in zl.namelist() if n.endswith(".png")) and len(pngs) == 6
        assert all(zp.read(n) == zl.read(n) for n in pngs)
    assert _json(plain)["camera_angles"] == meta["camera_angles"]
    # names of one's own, one per mesh in sorted order: the skipped mesh's goes with it
    named = tmp_path / "named.zip"
    assert main(["render", "--out", str(named), *args, "--class-names", "junk, ball,box"]) == 0
    assert _json(named)["class_names"] == ["ball", "box"] and _json(named)["labels"] == meta["labels"]
    for bad in ["ball,box", "a,b,b", "a,,c"]:
        with pytest.raises(UserError, match="--class-names"):
            main(["render", "--out", str(tmp_path / "bad.zip"), *args, "--class-names", bad])
    assert not (tmp_path / "bad.zip").exists()
    ds = ImageDataset(str(labelled), camera_cfg=get_preset("demo").camera)
    assert ds.label_dim == 2
    for i in range(len(ds)):  # the one-hot label names the object the image shows (green ball, red box)
        item = ds[i]
        img = item["image"].float()
        greener = (img[1] - img[0]).sum() > 0
        assert item["label"].tolist() == ([1.0, 0.0] if greener else [0.0, 1.0]), i
