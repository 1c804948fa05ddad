"""core/metrics/nearest.py: the nearest real image's class of each generated image, against a
per-row loop and against stand-in generators whose every image is known to show one class."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.config import get_preset
from core.errors import UserError
from core.metrics.nearest import nearest_class_report, nearest_labels


def _loop_nearest(query, reference, labels, exclude_self=False):
    out = []
    for i, q in enumerate(query):
        best, pick = -np.inf, None
        for j, r in enumerate(reference):
            if exclude_self and i == j:
                continue
            cos = float(q @ r / (np.linalg.norm(q) * np.linalg.norm(r)))
            if cos > best:
                best, pick = cos, labels[j]
        out.append(pick)
    return np.array(out)


def test_nearest_labels_match_a_loop():
    rng = np.random.RandomState(0)
    ref, query = rng.randn(40, 6).astype(np.float32), rng.randn(25, 6).astype(np.float32)
    labels = rng.randint(0, 4, 40)
    assert (nearest_labels(query, ref, labels) == _loop_nearest(query, ref, labels)).all()
    assert (nearest_labels(ref, ref, labels) == labels).all()  # each row finds itself
    assert (nearest_labels(ref, ref, labels, exclude_self=True)
            == _loop_nearest(ref, ref, labels, exclude_self=True)).all()


COLOURS = torch.tensor([[220, 30, 30], [30, 220, 30], [30, 30, 220]], dtype=torch.uint8)  # class 0, 1, 2


class ColourSet:
    """A labelled stand-in dataset: image i is a solid colour of class i % 3, slightly varied."""

    def __init__(self, n=12, res=8):
        self.n, self.resolution, self.label_dim = n, res, 3
        self.class_names, self.path, self.name, self.mirror = ["red", "green", "blue"], None, "colours", False

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        c = COLOURS[i % 3].int() + (i // 3)  # a little variation within a class
        return {"image": c.view(3, 1, 1).expand(3, self.resolution, self.resolution).to(torch.uint8).clone(),
                "label": torch.nn.functional.one_hot(torch.tensor(i % 3), 3).float()}


def mean_colour_net(imgs: torch.Tensor) -> torch.Tensor:
    """The mean colour, in the first 3 of the 2048 feature values."""
    mean = imgs.float().mean((2, 3))  # [B, 3]
    return torch.cat([mean, torch.zeros(len(mean), 2045)], dim=1)


class PaintsItsClass(torch.nn.Module):
    """A stand-in class-conditional G whose image of class k is the solid colour of class (k + shift) % 3."""

    def __init__(self, shift=0, c_dim=3):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        cfg = get_preset("demo")
        cfg.generator.c_dim = c_dim
        self.cfg, self.shift = cfg, shift

    def mapping(self, z, c, psi=1.0):
        return c if c is not None else torch.zeros(len(z), 3)

    def planes(self, w):
        return w

    def render(self, planes, cams, resolution, deterministic=True, w=None, skip_empty=False):
        k = (planes.argmax(dim=1) + self.shift) % 3
        img = COLOURS[k].float() / 127.5 - 1  # [B, 3] in [-1, 1]
        return {"image": img[:, :, None, None].expand(-1, 3, resolution, resolution)}


def test_report_of_stand_in_generators(tmp_path):
    kw = {"device": "cpu", "progress": False, "feature_net": mean_colour_net, "cache_dir": tmp_path}
    ds = ColourSet()
    good = nearest_class_report(PaintsItsClass(0), ds, 30, **kw)
    assert good["real_agreement"] == 1.0 and good["class_agreement"] == 1.0
    assert set(good["class_agreement_per_class"].values()) == {1.0}
    assert sum(good["nearest_class_share"].values()) == pytest.approx(1.0)
    wrong = nearest_class_report(PaintsItsClass(1), ds, 30, **kw)  # every class painted as the next one
    assert wrong["class_agreement"] == 0.0
    # the shares follow the labels drawn from the data (a third each, near enough) and are the
    # same for both models up to the relabelling
    assert [wrong["nearest_class_share"][n] for n in ("green", "blue", "red")] == \
        [good["nearest_class_share"][n] for n in ("red", "green", "blue")]


def test_unconditional_model_and_unlabelled_data(tmp_path):
    kw = {"device": "cpu", "progress": False, "feature_net": mean_colour_net, "cache_dir": tmp_path}
    always_blue = PaintsItsClass(2, c_dim=0)  # no label: argmax of zeros is class 0, painted as 0 + 2 = blue
    rep = nearest_class_report(always_blue, ColourSet(), 10, **kw)
    assert rep["nearest_class_share"] == {"red": 0.0, "green": 0.0, "blue": 1.0}
    assert "class_agreement" not in rep
    unlabelled = SimpleNamespace(label_dim=0)
    with pytest.raises(UserError, match="class labels"):
        nearest_class_report(always_blue, unlabelled, 10, **kw)
