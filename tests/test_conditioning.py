"""Class labels added to a trained unconditional model (core/training/conditioning.py): the widened
networks compute what the originals did for every label, the label columns do reach the outputs,
and training continues from the weights through `--resume SNAPSHOT --generator.c_dim K`."""

import copy
import json
import zipfile

import pytest
import torch
import torch.nn.functional as F

from core.checkpoint import load_checkpoint
from core.errors import UserError
from core.networks.generator import TriPlaneGenerator
from core.train import main as train_main
from core.training import distributed as distlib
from core.training.conditioning import add_class_conditioning
from core.training.loop import train
from core.training.setup import build_discriminator
from tests.test_train import TINY_SET, tiny_train_config

K = 3


def _conditional(cfg):
    cfg = copy.deepcopy(cfg)
    cfg.generator.c_dim = K
    return cfg


def _widened_pair():
    torch.manual_seed(0)
    cfg = tiny_train_config()
    G0, D0 = TriPlaneGenerator(cfg).eval(), build_discriminator(cfg).eval()
    with torch.no_grad():  # a trained-looking w_avg and biases, not the initial zeros
        G0.mapping_network.w_avg.normal_()
        for p in list(G0.mapping_network.parameters()) + list(D0.head_mapping.parameters()):
            p.add_(0.1 * torch.randn_like(p))
    cfg1 = _conditional(cfg)
    G1, D1 = TriPlaneGenerator(cfg1).eval(), build_discriminator(cfg1).eval()
    G1.load_state_dict(add_class_conditioning(G0.state_dict(), G1.state_dict(), K, "G"))
    D1.load_state_dict(add_class_conditioning(D0.state_dict(), D1.state_dict(), K, "D"))
    return cfg, G0, D0, G1, D1


@torch.no_grad()
def test_widened_networks_compute_what_the_originals_did_for_every_label():
    cfg, G0, D0, G1, D1 = _widened_pair()
    z = torch.randn(4, cfg.generator.z_dim)
    img = torch.rand(4, 3, cfg.train.patch_res, cfg.train.patch_res) * 2 - 1
    patch = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.2, 0.1], [0.7, 0.0, 0.3], [0.6, 0.4, 0.4]])
    for psi in (1.0, 0.6):
        w0 = G0.mapping(z, None, psi=psi)
        d0 = D0(img, patch)
        for k in range(K):
            c = F.one_hot(torch.full((4,), k), K).float()
            torch.testing.assert_close(G1.mapping(z, c, psi=psi), w0, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(D1(img, patch, c=c), d0, rtol=1e-5, atol=1e-5)
    # the new columns are the ones the label feeds: once they are not zero, the label changes the outputs
    G1.mapping_network.layers[0].weight[:, cfg.generator.z_dim:].normal_()
    D1.head_mapping.embed.weight[:, :K].normal_()
    c0, c1 = (F.one_hot(torch.full((4,), k), K).float() for k in (0, 1))
    assert (G1.mapping(z, c0) - G1.mapping(z, c1)).abs().max() > 1e-2
    assert (D1(img, patch, c=c0) - D1(img, patch, c=c1)).abs().max() > 1e-3


def test_mismatched_networks_are_refused():
    cfg, G0, D0, G1, D1 = _widened_pair()
    other = tiny_train_config()
    other.generator.c_dim, other.generator.w_dim = K, 2 * other.generator.w_dim
    with pytest.raises(ValueError, match="G: "):
        add_class_conditioning(G0.state_dict(), TriPlaneGenerator(other).state_dict(), K, "G")
    with pytest.raises(ValueError, match="expected 2"):  # D's label enters as its K values
        add_class_conditioning(D0.state_dict(), D1.state_dict(), 2, "D")
    with pytest.raises(ValueError, match="lacks"):
        add_class_conditioning({**G0.state_dict(), "extra.weight": torch.zeros(1)}, G1.state_dict(), K, "G")


def _labelled_copy(src, dst):
    """The synthetic set with each view labelled by its object (obj0000/... -> class 0)."""
    with zipfile.ZipFile(src) as zs, zipfile.ZipFile(dst, "w") as zd:
        for name in zs.namelist():
            data = zs.read(name)
            if name == "dataset.json":
                meta = json.loads(data)
                meta["labels"] = {n: int(n.split("/")[0][3:]) for n in meta["camera_angles"]}
                data = json.dumps(meta).encode()
            zd.writestr(name, data)


def test_resume_adds_class_labels_and_training_continues(dataset, tmp_path, capsys):
    d = distlib.Dist()
    first = train(tiny_train_config(), dataset, tmp_path / "a", None, torch.device("cpu"), d, max_steps=4)
    labelled = tmp_path / "labelled.zip"
    _labelled_copy(dataset, labelled)
    out = tmp_path / "b"
    resumable = [o for o in TINY_SET if o.startswith("--set=train.")]  # the model's size comes from the snapshot
    base = ["--data", str(labelled), "--outdir", str(out), "--device", "cpu", "--max-steps", "2", *resumable]
    # without --generator.c_dim the labels do not fit the model: the error says what to pass
    with pytest.raises(UserError, match=f"pass --generator.c_dim {K} with --resume"):
        train_main([*base, "--resume", str(first["last_snapshot"])])
    assert train_main([*base, "--resume", str(first["last_snapshot"]), "--generator.c_dim", str(K)]) == 0
    assert f"it was unconditional: {K} class labels added, G's label weights at 1 x" in capsys.readouterr().out
    snap = sorted(out.glob("network-snapshot-*.pt"))[-1]
    before, after = load_checkpoint(first["last_snapshot"]), load_checkpoint(snap)
    assert after["config"]["generator"]["c_dim"] == K and after["progress"]["cur_nimg"] == 24
    # trained on from the old weights (at most what two Adam steps allow), not from a fresh start
    lr = tiny_train_config().train.g_lr
    same = [k for k in before["G"] if before["G"][k].shape == after["G"][k].shape and not k.endswith("w_avg")]
    assert len(same) == len(before["G"]) - 2  # only the first mapping layer changed shape (and w_avg, a running mean)
    moved = {k: (after["G"][k] - before["G"][k]).abs().max().item() for k in same}
    assert max(moved.values()) < 4 * lr, sorted(moved.items(), key=lambda kv: -kv[1])[:3]
    # the snapshot resumes as it is, with the same c_dim or without it; another c_dim is refused
    assert train_main([*base, "--resume", "auto", "--generator.c_dim", str(K), "--max-steps", "1"]) == 0
    with pytest.raises(UserError, match=f"class-conditional with c_dim {K}"):
        train_main([*base, "--resume", "auto", "--generator.c_dim", "5"])


@torch.no_grad()
def test_label_init_gives_each_class_its_own_w_at_a_fresh_networks_scale():
    cfg, G0, _, _, _ = _widened_pair()
    cfg1 = _conditional(cfg)
    torch.manual_seed(1)
    fresh = TriPlaneGenerator(cfg1).eval()
    z = torch.randn(64, cfg.generator.z_dim)
    c = [F.one_hot(torch.full((64,), k), K).float() for k in range(K)]
    w0 = G0.mapping(z, None)
    spread = {}
    for init in (0.0, 0.5, 1.0):
        G1 = TriPlaneGenerator(cfg1).eval()
        G1.load_state_dict(add_class_conditioning(G0.state_dict(), fresh.state_dict(), K, "G", label_init=init))
        ws = [G1.mapping(z, ck) for ck in c]
        # how far apart two classes put the same z, against how far z moves w within a class
        spread[init] = ((ws[0] - ws[1]).norm(dim=1).mean() / (w0 - w0.mean(0)).norm(dim=1).mean()).item()
        # what the label does not feed is unchanged
        assert torch.equal(G1.mapping_network.layers[1].weight, G0.mapping_network.layers[1].weight)
    assert spread[0.0] < 1e-5 < spread[0.5] < spread[1.0]
    # a fresh network's own label weights move w about as much as its z does (the scale label_init 1 restores)
    zf = fresh.mapping(z, c[0])
    fresh_spread = ((fresh.mapping(z, c[1]) - zf).norm(dim=1).mean() / (zf - zf.mean(0)).norm(dim=1).mean()).item()
    assert 0.3 * fresh_spread < spread[1.0] < 3 * fresh_spread
