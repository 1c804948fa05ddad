"""The training tests' tiny model, in one place: `tiny_train_config()` for training in-process, and
the same config as `section.key=value` overrides of the demo preset (`TINY_TRAIN_OVERRIDES`) for
`core.train` command lines (tests/test_train.py, the viewer's training tests and GUI driver).
A tick per 4-image step, a snapshot every 2 ticks."""

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
