"""3DGP depth: depth maps in datasets, add-depth, render --depth (EGL), the degradation, the depth adaptor."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr

from core.config_3dgp import DepthConfig
from core.data import ImageDataset
from core.data.dataset import is_image_name
from core.data.depth import decode_depth, degrade_depth, real_rgbd
from core.data.depth_files import add_depth
from core.data.synthetic import OBJECT_RADIUS
from core.dataset_tool import main
from core.errors import UserError, cli_main
from core.networks.depth_adaptor import DepthAdaptor, fake_expected_depth, selection_probabilities
from core.render.rays import Patch
from core.training.patches import extract_patches

RES = 8
YAWS = [0.3, -1.2, 2.5, 0.9]


# --------------------------------------------------------------------------------------------------
# helpers: PNG writers independent of the code under test


def _png(arr: np.ndarray, bits: int, ctype: int) -> bytes:
    """A minimal PNG encoder (filter 0): grey (0) or grey+alpha (4), 8 or 16 bits."""
    h, w = arr.shape[:2]
    dt = ">u2" if bits == 16 else "u1"
    raw = b"".join(b"\x00" + arr[y].astype(dt).tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _ramp16(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (RES, RES)).astype(np.uint16)


def _dataset(root: Path, n: int = 4, depth_kinds: tuple = ("16", "8", "la16", "la8")) -> tuple[Path, list]:
    """root/imgs/img{i}.png with depth maps of the given kinds (None: no depth); returns the expected
    16-bit values per image."""
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    expected = []
    for i in range(n):
        rgb = np.random.default_rng(100 + i).integers(0, 256, (RES, RES, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "imgs" / f"img{i}.png")
        kind = depth_kinds[i] if i < len(depth_kinds) else None
        d16 = _ramp16(i)
        path = root / "imgs" / f"img{i}_depth.png"
        if kind == "16":
            Image.fromarray(d16).save(path)
        elif kind == "8":
            d8 = (d16 >> 8).astype(np.uint8)
            Image.fromarray(d8).save(path)
            d16 = d8.astype(np.uint16) * 257
        elif kind == "la16":
            path.write_bytes(_png(np.stack([d16, np.full_like(d16, 65535)], -1), 16, 4))
        elif kind == "la8":
            d8 = (d16 >> 8).astype(np.uint8)
            path.write_bytes(_png(np.stack([d8, np.full_like(d8, 200)], -1), 8, 4))
            d16 = d8.astype(np.uint16) * 257
        expected.append(d16 if kind else None)
    meta = {"camera_angles": {f"imgs/img{i}.png": [YAWS[i % 4], 1.4, 0.0] for i in range(n)}}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root, expected


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return out


def _digest(path: Path) -> str:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return hashlib.sha256(b"".join(p.relative_to(path).as_posix().encode() + p.read_bytes()
                                   for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()


# --------------------------------------------------------------------------------------------------
# loading


def test_depth_files_are_not_images_and_map_to_minus_one_one(tmp_path):
    folder, expected = _dataset(tmp_path / "ds")
    assert not is_image_name("imgs/img0_depth.png") and not is_image_name("a/B_DEPTH.PNG")
    assert is_image_name("imgs/img0.png") and is_image_name("depth.png")
    for path in (folder, _zip(folder, tmp_path / "ds.zip")):
        plain = ImageDataset(str(path))
        assert plain.num_images == 4 and plain.has_depth and "depth" not in plain[0]
        ds = ImageDataset(str(path), depth=True)
        assert ds.has_depth and ds.depth and "depth" in repr(ds)
        for i, d16 in enumerate(expected):
            got = ds[i]["depth"]
            assert got.shape == (1, RES, RES) and got.dtype == torch.float32
            want = torch.from_numpy(d16.astype(np.float64) / 65536 * 2 - 1).float()[None]
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
            assert torch.equal(ds[i]["image"], plain[i]["image"])
    # 16-bit two-channel maps are read exactly (PIL alone would keep only the high bytes)
    d = _ramp16(7)
    assert np.array_equal(decode_depth(_png(np.stack([d, d[::-1]], -1), 16, 4), "x"), d)
    assert np.array_equal(decode_depth(_png(d, 16, 0), "x"), d)


def test_depth_is_resized_with_the_image(tmp_path):
    folder, expected = _dataset(tmp_path / "ds", n=1, depth_kinds=("16",))
    flat = np.full((2 * RES, 2 * RES), 40000, np.uint16)  # a depth map at twice the image size
    Image.fromarray(flat).save(folder / "imgs" / "img0_depth.png")
    ds = ImageDataset(str(folder), resolution=4, depth=True)
    item = ds[0]
    assert item["image"].shape == (3, 4, 4) and item["depth"].shape == (1, 4, 4)
    torch.testing.assert_close(item["depth"], torch.full((1, 4, 4), 40000 / 32768 - 1))


def test_mirror_flips_depth_with_the_image(tmp_path):
    folder, _ = _dataset(tmp_path / "ds")
    ds = ImageDataset(str(folder), mirror=True, depth=True)
    assert len(ds) == 8
    for i in range(4):
        a, b = ds[i], ds[i + 4]
        assert torch.equal(b["image"], a["image"].flip(-1))
        assert torch.equal(b["depth"], a["depth"].flip(-1))
        assert not torch.equal(b["depth"], a["depth"])


def test_patches_of_rgbd_are_the_patches_of_each(tmp_path):
    folder, _ = _dataset(tmp_path / "ds")
    ds = ImageDataset(str(folder), depth=True)
    items = [ds[i] for i in range(4)]
    rgbd = real_rgbd(torch.stack([it["image"] for it in items]), torch.stack([it["depth"] for it in items]))
    assert rgbd.shape == (4, 4, RES, RES) and rgbd.min() >= -1 and rgbd.max() <= 1
    # exact crops on the pixel grid, and a general (bilinear) patch
    for patch, r in [(Patch(torch.full((4,), 4 / RES), torch.tensor([[0.0, 0.0], [0.5, 0.25], [0.125, 0.5],
                                                                      [0.5, 0.5]])), 4),
                     (Patch(torch.tensor([0.7, 0.55, 1.0, 0.9]), torch.tensor([[0.1, 0.2], [0.3, 0.0], [0, 0],
                                                                                [0.05, 0.07]])), 5)]:
        out = extract_patches(rgbd, patch, r)
        assert out.shape == (4, 4, r, r)
        torch.testing.assert_close(out[:, :3], extract_patches(rgbd[:, :3].contiguous(), patch, r))
        torch.testing.assert_close(out[:, 3:], extract_patches(rgbd[:, 3:].contiguous(), patch, r))
    out = extract_patches(rgbd, Patch(torch.full((4,), 4 / RES), torch.tensor([[0.5, 0.25]] * 4)), 4)
    torch.testing.assert_close(out, rgbd[:, :, 2:6, 4:8])


def test_missing_depth_is_one_clear_error(tmp_path):
    folder, _ = _dataset(tmp_path / "ds", n=4, depth_kinds=("16", "16"))
    ImageDataset(str(folder))  # fine without depth
    assert not ImageDataset(str(folder)).has_depth
    with pytest.raises(UserError) as e:
        ImageDataset(str(folder), depth=True)
    msg = str(e.value)
    assert "\n" not in msg and "2 of 4 images" in msg and "imgs/img2.png" in msg
    assert "python -m core.dataset_tool add-depth" in msg


# --------------------------------------------------------------------------------------------------
# add-depth


def _estimates(root: Path) -> dict[str, np.ndarray]:
    """Depth maps 'made elsewhere' for img0..img2 of _dataset (img3 left out), in three forms."""
    (root / "imgs").mkdir(parents=True)
    d0, d1 = _ramp16(10), _ramp16(11)
    Image.fromarray(d0).save(root / "imgs" / "img0.png")  # 16-bit, named like the image
    (root / "imgs" / "img1_depth.png").write_bytes(_png(np.stack([d1, d1], -1), 16, 4))  # LeReS-like 2-channel
    f2 = np.linspace(2.0, 7.0, RES * RES).reshape(RES, RES).astype(np.float32)
    np.save(root / "imgs" / "img2.npy", f2)  # float metres
    (root / "stray.png").write_bytes(_png(d0, 16, 0))  # matches nothing
    return {"imgs/img0": d0, "imgs/img1": d1, "imgs/img2": np.round((f2 - 2) / 5 * 65535).astype(np.uint16)}


def test_add_depth_merges_reports_missing_and_keeps_the_source(tmp_path, capsys):
    folder, _ = _dataset(tmp_path / "ds", depth_kinds=())
    src = _zip(folder, tmp_path / "ds.zip")
    want = _estimates(tmp_path / "est")
    before = _digest(src), _digest(folder)
    with pytest.raises(UserError, match="4 of 4 images"):
        ImageDataset(str(src), depth=True)
    out = tmp_path / "out" / "with_depth.zip"
    assert main(["add-depth", "--source", str(src), "--from", str(tmp_path / "est"), "--dest", str(out)]) == 0
    text = capsys.readouterr().out
    assert "depth for 3 of 4 images" in text and "1 image(s) without depth" in text and "imgs/img3.png" in text
    assert "stray.png" in text
    assert (_digest(src), _digest(folder)) == before
    assert [p.name for p in out.parent.iterdir()] == ["with_depth.zip"]  # no temporary file left
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert {f"imgs/img{i}_depth.png" for i in range(3)} <= names and "imgs/img3_depth.png" not in names
        for stem, d in want.items():
            got = decode_depth(zf.read(f"{stem}_depth.png"), stem)
            assert np.abs(got.astype(int) - d.astype(int)).max() <= 1, stem
    ds = ImageDataset(str(out))
    assert ds.num_images == 4 and not ds.has_depth
    # a folder destination, from a folder source; --disparity reverses the order
    out_dir = tmp_path / "out_dir"
    rep = add_depth(folder, tmp_path / "est", out_dir, disparity=True)
    assert (rep.matched, rep.kept, rep.missing) == (3, 0, ["imgs/img3.png"])
    d0 = decode_depth((out_dir / "imgs" / "img0_depth.png").read_bytes(), "d0")
    assert np.array_equal(d0, 65535 - want["imgs/img0"])
    assert _digest(folder) == before[1]
    # a second merge that covers the last image keeps the maps already there
    (tmp_path / "est2" / "imgs").mkdir(parents=True)
    Image.fromarray(_ramp16(3)).save(tmp_path / "est2" / "imgs" / "img3.png")
    rep = add_depth(out, tmp_path / "est2", tmp_path / "full.zip")
    assert (rep.matched, rep.kept, rep.missing) == (1, 3, [])
    assert ImageDataset(str(tmp_path / "full.zip"), depth=True).has_depth


def test_add_depth_refuses_no_match_and_the_source_as_dest(tmp_path, capsys):
    folder, _ = _dataset(tmp_path / "ds", depth_kinds=())
    (tmp_path / "est").mkdir()
    Image.fromarray(_ramp16(0)).save(tmp_path / "est" / "other.png")
    out = tmp_path / "o.zip"
    code = cli_main(main)(["add-depth", "--source", str(folder), "--from", str(tmp_path / "est"), "--dest", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "none of the 4 images" in err and "other.png" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ds", "est"]
    _estimates(tmp_path / "est2")
    for dest in (folder, folder / "sub", tmp_path):
        with pytest.raises(UserError, match="--dest"):
            add_depth(folder, tmp_path / "est2", dest)


# --------------------------------------------------------------------------------------------------
# the degradation (no EGL needed)


def _sphere_depth(res: int = 64, cam: float = 1.0, r: float = 0.25, fov_deg: float = 30.0):
    """Closed-form ray distance to a sphere of radius r at the origin, camera on +z at distance cam."""
    c = (np.arange(res) + 0.5) / res * 2 - 1
    x, y = np.meshgrid(c, -c)
    t = math.tan(math.radians(fov_deg) / 2)
    d = np.stack([x * t, y * t, -np.ones_like(x)], -1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = np.array([0.0, 0.0, cam])
    b = (d * o).sum(-1)
    disc = b * b - (o @ o - r * r)
    hit = disc >= 0
    return np.where(hit, -b - np.sqrt(np.maximum(disc, 0)), np.inf), hit


def test_degraded_depth_is_monotone_related_but_not_equal():
    depth, hit = _sphere_depth()
    near, far = 1.0 - 0.27, 1.0 + 0.27
    unit = np.where(hit, (depth - near) / (far - near), 0.0)
    exact = np.where(hit, np.round(unit * 65535), 65535).astype(np.uint16)
    a, params = degrade_depth(unit, hit.astype(float), np.random.default_rng([0, 0, 0]))
    b, _ = degrade_depth(unit, hit.astype(float), np.random.default_rng([0, 0, 0]))
    c, _ = degrade_depth(unit, hit.astype(float), np.random.default_rng([0, 0, 1]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)  # seeded, deterministic
    assert a.dtype == np.uint16 and (a[~hit] == 65535).all()  # background stays far
    assert not np.array_equal(a[hit], exact[hit])
    assert spearmanr(a[hit], exact[hit]).statistic > 0.9
    assert 0.7 <= params["gamma"] <= 1.4 and a[hit].max() < 65535


# --------------------------------------------------------------------------------------------------
# render --depth (needs EGL)


def _egl_or_skip():
    pytest.importorskip("trimesh", reason="pip install trimesh")
    from core.data import mesh_render

    try:
        mesh_render.egl_context()
    except UserError as e:
        pytest.skip(str(e))


def test_render_depth_of_a_sphere_is_its_closed_form(tmp_path):
    _egl_or_skip()
    import trimesh

    from core import cameras as camlib
    from core.render.rays import make_rays

    meshes = tmp_path / "meshes"
    meshes.mkdir()
    trimesh.creation.icosphere(subdivisions=5, radius=3.0).export(meshes / "ball.ply")  # rescaled to OBJECT_RADIUS
    res, views = 32, 3
    out, deg, deg2 = tmp_path / "d.zip", tmp_path / "g.zip", tmp_path / "g2.zip"
    args = ["render", "--meshes", str(meshes), "--views", str(views), "--res", str(res), "--seed", "3"]
    assert main([*args, "--out", str(out), "--depth"]) == 0
    assert main([*args, "--out", str(deg), "--depth-degrade"]) == 0
    assert main([*args, "--out", str(deg2), "--depth-degrade"]) == 0
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("dataset.json"))
        rec = meta["render"]["depth"]
        near, far = rec["near"], rec["far"]
        assert (near, far) == (meta["render"]["near"], meta["render"]["far"]) and not rec["degraded"]
        ds = ImageDataset(str(out), depth=True)
        assert ds.num_images == views and ds.has_depth
        for v in range(views):
            name = f"00000_ball/view{v:03d}"
            d16 = decode_depth(zf.read(f"{name}_depth.png"), name)
            t = near + d16.astype(np.float64) / 65535 * (far - near)
            yaw, pitch, _ = meta["camera_angles"][f"{name}.png"]
            cams = camlib.from_angles(torch.tensor([yaw]), torch.tensor([pitch]), meta["render"]["radius"], 30.0)
            o, d = make_rays(cams, res)  # [1, R*R, 3], unit directions
            o, d = o[0].double().numpy(), d[0].double().numpy()
            b = (o * d).sum(-1)
            disc = b * b - ((o * o).sum(-1) - OBJECT_RADIUS ** 2)
            closed = (-b - np.sqrt(np.maximum(disc, 0))).reshape(res, res)
            pixel = meta["render"]["radius"] * 2 * math.tan(math.radians(15)) / res  # a pixel's width at the object
            c = res // 2
            assert abs(t[c, c] - closed[c, c]) < 0.05 * pixel, (v, t[c, c], closed[c, c])
            inner = disc.reshape(res, res) > (0.8 * OBJECT_RADIUS) ** 2  # away from the silhouette
            assert np.abs(t[inner] - closed[inner]).max() < 0.05 * pixel
            outside = disc.reshape(res, res) < -0.01
            assert (d16[outside] == 65535).all()
            # the loader's value is v / 65536 * 2 - 1
            assert float(ds[v]["depth"][0, c, c]) == pytest.approx(d16[c, c] / 32768 - 1, abs=1e-6)
    with zipfile.ZipFile(deg) as zg, zipfile.ZipFile(deg2) as zg2, zipfile.ZipFile(out) as zf:
        assert json.loads(zg.read("dataset.json"))["render"]["depth"]["degraded"]
        for v in range(views):
            n = f"00000_ball/view{v:03d}_depth.png"
            assert zg.read(n) == zg2.read(n)  # seeded
            exact, bad = decode_depth(zf.read(n), n), decode_depth(zg.read(n), n)
            fg = exact < 65535
            assert fg.sum() > 50 and (bad[~fg] == 65535).all() and not np.array_equal(bad, exact)
            assert spearmanr(exact[fg], bad[fg]).statistic > 0.9
        assert zg.read("00000_ball/view000.png") == zf.read("00000_ball/view000.png")  # images unchanged


# --------------------------------------------------------------------------------------------------
# the depth adaptor


def test_adaptor_normalisation_maps_shifted_near_and_far_to_minus_one_and_one():
    ad = DepthAdaptor()
    assert float(ad.theta.detach()) == -3.0
    near, far = 0.75, 1.25
    near_p = near + 1 / (1 + math.exp(3)) * 0.25 * (far - near)
    assert float(ad.near_shifted(near, far).detach()) == pytest.approx(near_p)
    d = torch.tensor([near_p, far, (near_p + far) / 2]).reshape(3, 1, 1, 1).expand(3, 1, 2, 2)
    out = ad.normalize(d, near, far)
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([-1.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    # per-sample bounds (a camera batch's near/far [B])
    nears, fars = torch.tensor([0.5, 0.8]), torch.tensor([1.5, 1.1])
    np_ = nears + torch.sigmoid(torch.tensor(-3.0)) * 0.25 * (fars - nears)
    out = ad.normalize(torch.stack([np_, fars], 1).reshape(2, 1, 1, 2), nears, fars)
    torch.testing.assert_close(out.reshape(2, 2), torch.tensor([[-1.0, 1.0], [-1.0, 1.0]]))


def test_selection_probabilities_anneal_and_are_drawn_per_sample():
    ad = DepthAdaptor()
    torch.testing.assert_close(ad.probabilities(0), torch.full((4,), 0.25, dtype=torch.float64))
    for k in (10000, 25000):
        torch.testing.assert_close(ad.probabilities(k), torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    mid = ad.probabilities(5000)
    assert float(mid.sum()) == pytest.approx(1.0) and mid[0] == pytest.approx(0.175)
    assert (mid.diff() > 0).all()
    assert selection_probabilities(0, 1).tolist() == [1.0]
    for kimg in (0, 10000):
        idx = ad.select(20000, kimg, torch.Generator().manual_seed(1))
        freq = torch.bincount(idx, minlength=4).double() / 20000
        assert (freq - ad.probabilities(kimg)).abs().max() < 0.01, freq
    a = ad.select(64, 3000, torch.Generator().manual_seed(5))
    assert torch.equal(a, ad.select(64, 3000, torch.Generator().manual_seed(5)))
    # the training forward takes each sample's drawn candidate
    ad.train()
    depth = 0.8 + 0.4 * torch.rand(32, 1, 6, 6)
    out, idx = ad(depth, 0.75, 1.25, kimg=10000, generator=torch.Generator().manual_seed(2), return_index=True)
    cands = torch.stack(ad.candidates(ad.normalize(depth, 0.75, 1.25)), 1)
    torch.testing.assert_close(out, cands[torch.arange(32), idx])
    assert len(set(idx.tolist())) == 4
    with pytest.raises(ValueError, match="kimg"):
        ad(depth, 0.75, 1.25)
    with pytest.raises(ValueError, match="select_start"):
        DepthAdaptor(DepthConfig(select_start=0.3))


def test_eval_uses_the_last_candidate_and_gradients_reach_everything():
    torch.manual_seed(0)
    ad = DepthAdaptor().eval()
    depth = (0.8 + 0.4 * torch.rand(4, 1, 8, 8)).requires_grad_(True)
    out, idx = ad(depth, torch.full((4,), 0.75), torch.full((4,), 1.25), return_index=True)
    assert idx.tolist() == [3] * 4
    last = ad.head(ad.layers[2](ad.layers[1](ad.layers[0](ad.normalize(depth, 0.75, 1.25)))))
    torch.testing.assert_close(out, last)
    out.square().mean().backward()
    grads = {n: p.grad for n, p in ad.named_parameters()}
    assert set(grads) == {"theta", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                          "layers.2.weight", "layers.2.bias", "head.weight", "head.bias"}
    for n, g in grads.items():
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, n
    assert depth.grad.abs().sum() > 0
    # training mode: every parameter is in the graph whichever candidates are drawn (DDP-safe)
    ad.train().zero_grad()
    ad(depth.detach(), 0.75, 1.25, kimg=0, generator=torch.Generator().manual_seed(0)).sum().backward()
    assert all(p.grad is not None for p in ad.parameters())


def test_the_head_is_shared_and_the_layers_are_as_specified():
    ad = DepthAdaptor()
    heads = [m for n, m in ad.named_modules() if "head" in n]
    assert len(heads) == 1 and tuple(ad.head.weight.shape) == (1, 64, 1, 1)
    assert [tuple(layer.weight.shape) for layer in ad.layers] == [(64, 1, 5, 5), (64, 64, 5, 5), (64, 64, 5, 5)]
    n_params = sum(p.numel() for p in ad.parameters())
    assert n_params == 1 + (64 * 25 + 64) + 2 * (64 * 64 * 25 + 64) + (64 + 1)
    assert ad.num_candidates == 4 and len(ad.candidates(torch.zeros(1, 1, 4, 4))) == 4


def test_fake_expected_depth_puts_the_background_at_far():
    raw = torch.tensor([0.0, 0.9, 0.45]).reshape(3, 1, 1, 1)
    opacity = torch.tensor([0.0, 1.0, 0.5]).reshape(3, 1, 1, 1)
    out = fake_expected_depth(raw, opacity, torch.tensor([1.25, 1.25, 1.5]))
    torch.testing.assert_close(out.flatten(), torch.tensor([1.25, 0.9, 1.2]))
