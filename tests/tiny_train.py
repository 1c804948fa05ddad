"""The training tests' tiny model, in one place: `tiny_train_config()` for training in-process, and
the same config as `section.key=value` overrides of the demo preset (`TINY_TRAIN_OVERRIDES`) for
`core.train` command lines (tests/test_train.py, the viewer's training tests and GUI driver).
A tick per 4-image step, a snapshot every 2 ticks. Also the exact-resume tests' comparison of
snapshots (`snapshot_states`, `assert_same`)."""

import torch

from core.checkpoint import load_checkpoint
from core.config import ModelConfig, get_preset
from core.config_cli import config_fields
from tests.conftest import tiny_config


def tiny_train_config() -> ModelConfig:
    cfg = tiny_config(num_coarse=6, num_fine=6)
    cfg.img_resolution = 32
    t = cfg.train
    t.batch, t.patch_res, t.workers, t.metrics = 4, 16, 0, ()
    t.tick_kimg, t.snapshot_ticks, t.r1_interval, t.kimg = 0.004, 2, 2, 1.0
    t.blur_fade_kimg = 1.0
    d = cfg.discriminator
    d.channel_base, d.channel_max, d.hyper_dim, d.patch_embed_dim = 512, 32, 32, 32
    return cfg


def as_overrides(cfg: ModelConfig, base: ModelConfig) -> tuple[str, ...]:
    """`section.key=value` for every leaf of `cfg` that differs from `base` (what core.train reads)."""
    out = []
    for name, owner, f in config_fields(cfg):
        value, parent = getattr(owner, f.name), base
        for part in name.split(".")[:-1]:
            parent = getattr(parent, part)
        if value != getattr(parent, f.name):
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            out.append(f"{name}={text}")
    return tuple(out)


# the run's length and batch are each test's own (--kimg, --batch, or the form's fields)
TINY_TRAIN_OVERRIDES = tuple(o for o in as_overrides(tiny_train_config(), get_preset("demo"))
                             if not o.startswith(("train.kimg=", "train.batch=")))


def snapshot_states(path, keys=("G", "D", "G_ema", "opt_G", "opt_D", "progress", "augment")) -> dict:
    """The entries of a training snapshot that an exact resume must reproduce."""
    data = load_checkpoint(path)
    return {k: data[k] for k in keys}


def assert_same(a, b, where="") -> None:
    """Nested dicts/lists/tensors equal exactly (tensors bit for bit); `where` names the first difference."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where
