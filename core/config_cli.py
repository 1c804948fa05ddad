"""Command-line options generated from the typed config: one `--section.field VALUE` per field,
with the field's doc string as help, applied on top of a preset."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .config import ModelConfig, apply_override, choices_of


def config_fields(cfg: Any, prefix: str = ""):
    """(dotted name, owning dataclass instance, field) for every leaf field, depth first."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from config_fields(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", cfg, f


CLI_SECTIONS = ("generator", "render", "discriminator", "camera", "camera_gen", "depth", "kd", "train")


def add_config_arguments(parser: argparse.ArgumentParser, sections: tuple[str, ...] = CLI_SECTIONS) -> None:
    """Add --section.field options (default None = keep the preset's value) for the given sections."""
    template = ModelConfig()
    for section in sections:
        group = parser.add_argument_group(f"{section} options (override the preset)")
        for name, _, f in config_fields(getattr(template, section), f"{section}."):
            default = getattr(template, section).__dataclass_fields__[f.name].default
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            allowed = choices_of(getattr(template, section), f.name)
            group.add_argument(f"--{name}", dest=name, default=None, metavar="|".join(allowed) if allowed else "V",
                               help=f"{f.metadata.get('doc', '')} (default {shown})")


def overrides_from_args(ns: argparse.Namespace) -> list[str]:
    """'section.field=value' strings for the generated options the user set."""
    out = []
    for key, value in vars(ns).items():
        if "." in key and value is not None:
            out.append(f"{key}={value}")
    return out


def apply_overrides(cfg: ModelConfig, overrides: list[str]) -> ModelConfig:
    for o in overrides:
        apply_override(cfg, o)
    return cfg
