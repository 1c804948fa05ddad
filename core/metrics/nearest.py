"""Which object of the data each generated image looks like: its nearest real image's class.

For a dataset with class labels (one class per object, as `core.dataset_tool render
--class-labels` writes), every generated image is given the class of its nearest real image in
Inception feature space (cosine similarity, over all real images). That reads two things off a
model:

- `class_agreement` (class-conditional models): how often the nearest real image is of the class
  the image was generated for, i.e. how often a sample is recognisably its object.
- `nearest_class_share`: the share of generated images nearest to each class (how a model covers
  the objects; for an unconditional one the only per-class figure).

The same rule applied to each real image against all the others (`real_agreement`, leave one out)
says how well the features tell the objects apart at all: the ceiling for `class_agreement`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import UserError
from .evaluate import FeatureNet, _label_of, generated_features, real_features
from .features import load_inception


def _unit(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float32))
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest_labels(query: np.ndarray, reference: np.ndarray, labels: np.ndarray,
                   exclude_self: bool = False) -> np.ndarray:
    """For each query feature [Q, F], the label of its most cosine-similar reference [R, F] ([R] labels).
    exclude_self: the query set is the reference set, and each row may not pick itself."""
    q, r = _unit(query), _unit(reference)
    out = np.empty(len(q), dtype=np.int64)
    for i in range(0, len(q), 1024):
        sim = q[i:i + 1024] @ r.T  # [b, R]
        if exclude_self:
            rows = torch.arange(sim.shape[0])
            sim[rows, rows + i] = -2.0
        out[i:i + 1024] = np.asarray(labels)[sim.argmax(dim=1).numpy()]
    return out


def real_labels(dataset: Any, n: int, seed: int = 0) -> np.ndarray:
    """Class indices [n] of the real images whose features `real_features(dataset, n, seed=seed)` gives."""
    order = np.random.RandomState(seed).permutation(len(dataset))[:n]  # real_features' order
    return np.array([int(_label_of(dataset, int(i)).argmax()) for i in order])


def class_figures(real: np.ndarray, real_cls: np.ndarray, fake: np.ndarray, fake_labels: torch.Tensor | None,
                  names: list[str]) -> dict[str, Any]:
    """The figures from features: real [R, F] with classes [R], fake [N, F] with the one-hot labels
    [N, K] they were generated with (None: an unconditional model); `names` of the K classes."""
    nearest = nearest_labels(fake, real, real_cls)
    k = len(names)
    report: dict[str, Any] = {
        "num_gen": len(fake), "num_real": len(real),
        "real_agreement": round(float((nearest_labels(real, real, real_cls, exclude_self=True) == real_cls).mean()), 4),
        "nearest_class_share": {names[c]: round(float((nearest == c).mean()), 4) for c in range(k)},
    }
    if fake_labels is not None:
        wanted = fake_labels.argmax(dim=1).numpy()
        report["class_agreement"] = round(float((nearest == wanted).mean()), 4)
        report["class_agreement_per_class"] = {
            names[c]: round(float((nearest[wanted == c] == c).mean()), 4) if (wanted == c).any() else None
            for c in range(k)}
    return report


def class_names(dataset: Any) -> list[str]:
    """The dataset's class names, else the class indices as text."""
    return list(getattr(dataset, "class_names", None) or [str(c) for c in range(dataset.label_dim)])


@torch.no_grad()
def nearest_class_report(G: torch.nn.Module, dataset: Any, num_gen: int, device: str | torch.device,
                         batch: int = 16, cache_dir=None, progress: bool = True, *, seed: int = 0,
                         feature_net: FeatureNet | None = None) -> dict[str, Any]:
    """The nearest-real-image class figures of G (G_ema, eval mode, on `device`) on a labelled dataset,
    against all of its real images."""
    if dataset.label_dim == 0:
        raise UserError("the nearest-class figures need a dataset with class labels (dataset.json 'labels')")
    net = feature_net if feature_net is not None else load_inception(device)
    real = real_features(dataset, len(dataset), net, batch, cache_dir, seed, progress)
    fake, fake_labels = generated_features(G, num_gen, dataset.resolution, net, dataset, batch, 1.0, seed, progress,
                                           with_labels=True)
    return class_figures(real, real_labels(dataset, len(dataset), seed), fake, fake_labels, class_names(dataset))
