"""ImageDataset: both dataset.json forms, folder == zip, mirroring math, clear errors, synthetic data."""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cameras as camlib
from core.config import get_preset
from core.data import ImageDataset, mirror_cam2world, mirror_cameras
from core.data.synthetic import Primitive, make_synthetic, object_field
from core.errors import UserError
from core.render.rays import make_rays
from core.render.renderer import render_rays

YAWS = [0.3, -1.2, 2.5, 0.0, -0.4]
PITCHES = [1.2, 1.6, 0.7, 2.9, 1.57]


def _img(seed: int, size=(8, 8)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_folder(root: Path, n: int = 5, keys=None, extra: dict | None = None, json_at="dataset.json") -> Path:
    """root/imgs/img{i}.png + an EpiGRAF-form dataset.json (keys written in assorted spellings)."""
    keys = keys or [f"imgs/img{i}.png" for i in range(n)]
    for i in range(n):
        _write_png(root / "imgs" / f"img{i}.png", _img(i))
    meta = {"camera_angles": {k: [YAWS[i], PITCHES[i], 0.0] for i, k in enumerate(keys)}, **(extra or {})}
    (root / json_at).parent.mkdir(parents=True, exist_ok=True)
    (root / json_at).write_text(json.dumps(meta))
    return root


def zip_folder(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return out


def project(c2w: torch.Tensor, k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Independent pinhole oracle: world points [N, 3] -> image (u, v) [N, 2] in [0, 1] (v from the top)."""
    w2c = torch.linalg.inv(c2w.double())
    pc = (w2c[:3, :3] @ x.double().T).T + w2c[:3, 3]  # OpenGL camera: looks down -z
    depth = -pc[:, 2]
    u = k[0, 2] + k[0, 0] * pc[:, 0] / depth
    v = k[1, 2] - k[1, 1] * pc[:, 1] / depth
    return torch.stack([u, v], -1)


# --------------------------------------------------------------------------------------------------


def test_epigraf_form_folder_and_zip_are_equivalent(tmp_path):
    keys = ["imgs/img0.png", "./imgs\\img1.png", "imgs/img2", "ds/imgs/img3.png", "/imgs/img4.jpg"]
    folder = make_folder(tmp_path / "ds", keys=keys, extra={"labels": {f"imgs/img{i}.png": i % 3 for i in range(5)}})
    zp = zip_folder(folder, tmp_path / "ds.zip", prefix="ds/")  # leading "<zip stem>/" folder
    a, b = ImageDataset(str(folder)), ImageDataset(str(zp))
    assert len(a) == len(b) == 5 and a.name == b.name == "ds"
    assert a.resolution == 8 and a.label_dim == 3 and a.has_cameras
    for i in range(5):
        x, y = a[i], b[i]
        assert set(x) == {"image", "cam2world", "intrinsics", "angles", "label", "index"}
        assert x["index"].item() == i  # the item's index (distillation looks up its embedding by it)
        for k in x:
            assert torch.equal(x[k], y[k]), k
        assert x["image"].dtype == torch.uint8 and x["image"].shape == (3, 8, 8)
        assert torch.equal(x["image"], torch.from_numpy(_img(i)).permute(2, 0, 1))
        assert torch.allclose(x["angles"], torch.tensor([YAWS[i], PITCHES[i]]))
        ref = camlib.from_angles(YAWS[i], PITCHES[i], 1.0, 12.0)
        assert torch.allclose(x["cam2world"], ref.cam2world[0], atol=1e-6)
        assert torch.allclose(x["intrinsics"], ref.intrinsics[0])
        assert x["label"].tolist() == [float(j == i % 3) for j in range(3)]
        assert torch.equal(a.get_label(i), x["label"])
    assert b.camera_table().shape == (5, 2) and b.camera_table().dtype == torch.float32
    assert a.class_names is None


def test_class_names(tmp_path):
    labels = {f"imgs/img{i}.png": i % 3 for i in range(5)}
    ok = make_folder(tmp_path / "ok", extra={"labels": labels, "class_names": ["duck", "mug", "torus"]})
    assert ImageDataset(str(ok)).class_names == ["duck", "mug", "torus"]
    short = make_folder(tmp_path / "short", extra={"labels": labels, "class_names": ["duck", "mug"]})
    with pytest.raises(UserError, match="2 class_names for 3 label values"):
        ImageDataset(str(short))
    bad = make_folder(tmp_path / "bad", extra={"labels": labels, "class_names": "duck,mug,torus"})
    with pytest.raises(UserError, match="'class_names' must be a list of strings"):
        ImageDataset(str(bad))


def test_camera_config_and_float_labels(tmp_path):
    cfg = get_preset("demo").camera
    folder = make_folder(tmp_path / "d", extra={"labels": {f"imgs/img{i}.png": [i, 0.5] for i in range(5)}})
    ds = ImageDataset(str(folder), camera_cfg=cfg)
    ref = camlib.from_angles(YAWS[2], PITCHES[2], cfg.radius, cfg.fov_deg, cfg=cfg)
    assert torch.allclose(ds[2]["cam2world"], ref.cam2world[0], atol=1e-6)
    assert torch.allclose(ds[2]["intrinsics"], ref.intrinsics[0])
    assert ds.label_dim == 2 and ds[3]["label"].tolist() == [3.0, 0.5]


def test_eg3d_form(tmp_path):
    cams = camlib.from_angles(torch.tensor(YAWS), torch.tensor(PITCHES), 1.0, 18.0)
    labels = camlib.to_eg3d_labels(cams)  # [5, 25]
    for i in range(5):
        _write_png(tmp_path / "e" / f"{i:05d}.png", _img(i))
    rows = [[f"{i:05d}.png", labels[i].tolist()] for i in range(5)]
    (tmp_path / "e" / "dataset.json").write_text(json.dumps({"labels": rows}))
    ds = ImageDataset(str(tmp_path / "e"))
    assert ds.has_cameras and ds.label_dim == 0
    for i in range(5):
        assert torch.allclose(ds[i]["cam2world"], cams.cam2world[i], atol=1e-5)
        assert torch.allclose(ds[i]["intrinsics"], cams.intrinsics[i], atol=1e-6)
        assert torch.allclose(ds[i]["angles"], torch.tensor([YAWS[i], PITCHES[i]]), atol=1e-5)
        assert ds[i]["label"].shape == (0,)


def test_resize_and_no_cameras(tmp_path):
    _write_png(tmp_path / "r" / "a.png", np.full((16, 16, 3), 77, np.uint8))
    _write_png(tmp_path / "r" / "b.png", _img(1, (16, 16)))
    (tmp_path / "r" / "dataset.json").write_text(json.dumps({"labels": None}))
    ds = ImageDataset(str(tmp_path / "r"), resolution=4)
    assert ds.resolution == 4 and not ds.has_cameras
    assert ds[0]["image"].shape == (3, 4, 4) and bool((ds[0]["image"] == 77).all())
    big = torch.from_numpy(_img(1, (16, 16))).permute(2, 0, 1).float()
    assert torch.allclose(ds[1]["image"].float(), torch.nn.functional.avg_pool2d(big[None], 4)[0], atol=40)


def test_mirror_items_and_table(tmp_path):
    ds = ImageDataset(str(make_folder(tmp_path / "m")), mirror=True, camera_cfg=get_preset("demo").camera)
    assert len(ds) == 10
    table = ds.camera_table()
    assert table.shape == (10, 2)
    for i in range(5):
        a, m = ds[i], ds[i + 5]
        assert torch.equal(m["image"], a["image"].flip(-1))
        assert torch.allclose(m["angles"], torch.tensor([-YAWS[i], PITCHES[i]]))
        assert torch.allclose(table[i + 5], m["angles"]) and torch.allclose(table[i], a["angles"])
        ref = camlib.from_angles(-YAWS[i], PITCHES[i], 1.0, 30.0)  # look-at: mirror == yaw -> -yaw
        assert torch.allclose(m["cam2world"], ref.cam2world[0], atol=1e-6)
    labels = {f"imgs/img{i}.png": i % 2 for i in range(5)}
    labelled = ImageDataset(str(make_folder(tmp_path / "l", extra={"labels": labels})), mirror=True)
    for i in list(range(10)) + [-1]:  # the mirrored copies keep their image's label, without decoding it
        assert torch.equal(labelled.get_label(i), labelled[i]["label"]) and labelled.get_label(i).shape == (2,)
    with pytest.raises(IndexError):
        labelled.get_label(10)


def test_mirror_projection_oracle():
    """A point and its reflection in z = 0 land on mirrored pixels, for general cameras too."""
    g = torch.Generator().manual_seed(1)
    look = camlib.from_angles(torch.rand(6, generator=g) * 6 - 3, torch.rand(6, generator=g) * 2.6 + 0.3, 1.0, 30.0)
    rot = torch.linalg.qr(torch.randn(6, 3, 3, generator=g, dtype=torch.float64))[0]
    rot = rot * torch.sign(torch.det(rot))[:, None, None]
    c2w = torch.eye(4, dtype=torch.float64).repeat(6, 1, 1)
    c2w[:, :3, :3] = rot
    c2w[:, :3, 3] = -rot[:, :, 2] * 1.5 + torch.randn(6, 3, generator=g, dtype=torch.float64) * 0.1
    k = camlib.fov_to_intrinsics(torch.full((6,), 0.6, dtype=torch.float64))
    k[:, 0, 2] = 0.45  # an off-centre principal point too
    general = camlib.Cameras(c2w, k, torch.ones(6), torch.ones(6) * 2)
    pts = torch.randn(20, 3, generator=g, dtype=torch.float64) * 0.2
    refl = pts * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    for cams in (look.to(dtype=torch.float64), general):
        mc = mirror_cameras(cams)
        for i in range(len(cams)):
            uv = project(cams.cam2world[i], cams.intrinsics[i], pts)
            uv_m = project(mc.cam2world[i], mc.intrinsics[i], refl)
            assert torch.allclose(uv_m[:, 0], 1 - uv[:, 0], atol=1e-9)
            assert torch.allclose(uv_m[:, 1], uv[:, 1], atol=1e-9)
            assert torch.det(mc.cam2world[i, :3, :3]) > 0  # still a rotation


def test_mirror_render_oracle():
    """Our renderer: the reflected scene seen by the mirrored camera is the flipped render."""
    def scene(sign: float) -> Primitive:
        return Primitive("sphere", [0.05, 0.04, 0.1 * sign], [0.06] * 3, np.eye(3).tolist(), [0.9, 0.2, 0.1], 0.0)

    cfg = get_preset("demo").camera
    cams = camlib.from_angles(torch.tensor([0.7]), torch.tensor([1.3]), 1.0, 30.0, cfg=cfg)

    def render(prim, c):
        o, d = make_rays(c, 16)
        r = render_rays(object_field([prim]), o, d, c.near, c.far, 24, 24, far_opaque=False, deterministic=True)
        return r["opacity"].reshape(16, 16)

    a = render(scene(1.0), cams)
    b = render(scene(-1.0), mirror_cameras(cams))
    assert a.sum() > 5  # the sphere is in view
    assert torch.allclose(b, a.flip(-1), atol=1e-4)
    assert not torch.allclose(a, a.flip(-1), atol=1e-2)  # the test is not trivially symmetric
    assert torch.allclose(mirror_cam2world(mirror_cam2world(cams.cam2world)), cams.cam2world)


def test_zip_pickle_and_dataloader_workers(tmp_path):
    zp = zip_folder(make_folder(tmp_path / "w"), tmp_path / "w.zip")
    ds = ImageDataset(str(zp), mirror=True)
    _ = ds[0]  # the zip is open in this process now
    ds2 = pickle.loads(pickle.dumps(ds))
    assert torch.equal(ds2[7]["image"], ds[7]["image"])
    dl = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork")
    batches = list(dl)
    assert sum(b["image"].shape[0] for b in batches) == 10
    assert batches[0]["cam2world"].shape == (4, 4, 4) and batches[0]["label"].shape == (4, 0)


# --------------------------------------------------------------------------------------------------
# Errors: one UserError naming the file


def _expect(path, *needles):
    with pytest.raises(UserError) as e:
        ImageDataset(str(path))[0]
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_error_missing_path(tmp_path):
    _expect(tmp_path / "nope.zip", "nope.zip")


def test_error_no_or_two_json(tmp_path):
    f = make_folder(tmp_path / "a")
    (f / "dataset.json").unlink()
    _expect(f, "no dataset.json", str(f))
    f = make_folder(tmp_path / "b")
    (f / "imgs" / "dataset.json").write_text("{}")
    _expect(f, "2 dataset.json", "imgs/dataset.json")


def test_error_unmatched_entries(tmp_path):
    f = make_folder(tmp_path / "c")
    _write_png(f / "imgs" / "stray.png", _img(9))
    _expect(f, "stray.png", "no camera entry", "dataset.json")
    f = make_folder(tmp_path / "d")
    (f / "imgs" / "img4.png").unlink()
    _expect(f, "without an image", "img4", "dataset.json")


def test_error_zero_yaws_and_bad_json(tmp_path):
    f = make_folder(tmp_path / "z")
    meta = json.loads((f / "dataset.json").read_text())
    meta["camera_angles"] = {k: [0.0, v[1], 0.0] for k, v in meta["camera_angles"].items()}
    (f / "dataset.json").write_text(json.dumps(meta))
    _expect(f, "all yaw angles are zero: the camera file is almost surely broken", "dataset.json")
    (f / "dataset.json").write_text('{"camera_angles": {"a.png": [1, 2, 0],}')
    _expect(f, "not valid JSON", "dataset.json")
    (f / "dataset.json").write_text('{"camera_angles": {"imgs/img0.png": [1, "x", 0]}}')
    _expect(f, "img0.png", "dataset.json")


def test_error_sizes_and_corrupt(tmp_path):
    f = make_folder(tmp_path / "s")
    _write_png(f / "imgs" / "img2.png", _img(2, (8, 6)))
    _expect(f, "img2.png", "square")
    f = make_folder(tmp_path / "t")
    _write_png(f / "imgs" / "img3.png", _img(3, (16, 16)))
    _expect(f, "mixed resolutions", "img3.png")
    f = make_folder(tmp_path / "u")
    data = (f / "imgs" / "img1.png").read_bytes()
    (f / "imgs" / "img1.png").write_bytes(data[:60])  # header intact, pixels cut off
    ds = ImageDataset(str(f))
    _ = ds[0]
    assert torch.equal(ds[1]["image"], ds[2]["image"])  # an unreadable image is skipped (with a warning)
    (f / "imgs" / "img1.png").write_bytes(b"not an image at all")
    _expect(f, "img1.png")
    zp = tmp_path / "bad.zip"
    zp.write_bytes(b"PK\x03\x04garbage")
    _expect(zp, "bad.zip")


# --------------------------------------------------------------------------------------------------


def test_synthetic_round_trip(tmp_path):
    meta = make_synthetic(tmp_path / "syn.zip", num_objects=2, views=3, res=16, seed=3)
    ds = ImageDataset(str(tmp_path / "syn.zip"), camera_cfg=get_preset("demo").camera, mirror=True)
    assert len(ds) == 12 and ds.resolution == 16 and ds.has_cameras and ds.label_dim == 0
    for i, (name, (yaw, pitch, roll)) in enumerate(sorted(meta["camera_angles"].items())):
        item = ds[i]
        assert ds.images[i] == name and roll == 0.0
        assert torch.allclose(item["angles"], torch.tensor([yaw, pitch]))
        img = item["image"]
        assert (img[:, 0, 0] == 255).all()  # white background in the corner
        assert (img[:, 6:10, 6:10] < 250).any()  # the object is in the middle
    assert not torch.equal(ds[0]["image"], ds[3]["image"])  # two distinct objects
    assert (ds.camera_table()[:, 1] > 0).all() and (ds.camera_table()[:, 1] < math.pi).all()


def _rewrite_zip(src, dst, replace):
    import zipfile
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, replace.get(name, zin.read(name)))


def test_a_corrupt_image_is_skipped_with_one_warning(tmp_path, capsys):
    """An image that cannot be decoded (found mid-training) is replaced by the next one, said once,
    with its own camera and label; the run goes on."""
    from core.data.dataset import ImageDataset
    from core.data.synthetic import make_synthetic
    src = tmp_path / "ok.zip"
    make_synthetic(src, num_objects=2, views=3, res=16, seed=0)
    bad = tmp_path / "bad.zip"
    good = ImageDataset(str(src))
    name = good.images[1]
    data = zipfile_bytes(src, name)
    _rewrite_zip(src, bad, {name: data[:60]})  # header intact (the size check passes), pixels cut off
    ds = ImageDataset(str(bad))
    for _ in range(2):
        item = ds[1]
        assert torch.equal(item["image"], good[2]["image"]) and torch.equal(item["cam2world"], good[2]["cam2world"])
    err = capsys.readouterr().err
    assert err.count("warning: cannot decode image") == 1 and name in err


def zipfile_bytes(path, name):
    import zipfile
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def test_a_huge_declared_image_is_refused_when_opened(tmp_path):
    """A PNG whose header declares 100000 x 100000 pixels: one line when the dataset is opened."""
    import struct
    import zlib

    from core.data.dataset import ImageDataset
    from core.data.synthetic import make_synthetic
    from core.errors import UserError
    src = tmp_path / "ok.zip"
    make_synthetic(src, num_objects=1, views=2, res=16, seed=0)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    names = ImageDataset(str(src)).images
    bad = tmp_path / "huge.zip"
    _rewrite_zip(src, bad, {n: png for n in names})
    with pytest.raises(UserError, match=r"larger than 8192\^2: resize"):
        ImageDataset(str(bad))
