"""The training form: fields introspected from core's typed config, and the `python -m core.train` argv.

No GUI code here (viewer/panels/train.py draws it). Each `FormField` is one leaf of `ModelConfig`
(`train.kimg`, `train.r1_gamma`, ...): its kind comes from the preset's value, its tooltip is the
field's doc string (`core.config.field_doc`), its choices come from the field's Literal type.
`MAIN_FIELDS` are the options the panel shows; any other field can be set as an override line
(`section.key=value`, one per line). `build_argv` emits only what differs from the preset, so the
run's command line reads like one typed by hand, and `core.train` resolves it to the same config
(tests/test_viewer_train_form.py checks that round trip).
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import dataclass
from typing import Any

from core.config import PRESETS, ModelConfig, choices_of, field_doc, get_preset
from core.config_cli import config_fields

MAIN_FIELDS = (
    "train.kimg", "train.batch", "train.g_lr", "train.d_lr", "train.r1_gamma",
    "train.patch_res", "train.patch_dist", "train.patch_beta_start", "train.patch_beta_end", "train.patch_anneal_kimg",
    "train.augment", "train.tick_kimg", "train.snapshot_ticks", "train.metrics", "train.seed", "train.workers",
)
"""The options shown in the panel, in order (dotted names into ModelConfig)."""

CHOICES = {name: choices_of(owner, f.name) for name, owner, f in config_fields(ModelConfig())
           if choices_of(owner, f.name)}
"""The choice fields' allowed values, from their Literal types in core.config."""
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class FormField:
    """One config leaf as a form field: dotted name, kind ('int' | 'float' | 'bool' | 'str' | 'list'), doc."""

    name: str
    kind: str
    doc: str
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name.split(".", 1)[1]


def _owner(cfg: ModelConfig, name: str) -> tuple[Any, str]:
    obj, parts = cfg, name.split(".")
    for p in parts[:-1]:
        obj = getattr(obj, p)
    return obj, parts[-1]


def get_value(cfg: ModelConfig, name: str) -> Any:
    obj, leaf = _owner(cfg, name)
    return getattr(obj, leaf)


def set_value(cfg: ModelConfig, name: str, value: Any) -> None:
    obj, leaf = _owner(cfg, name)
    setattr(obj, leaf, value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, tuple):
        return "list"
    return "str"


def form_field(name: str) -> FormField:
    """The FormField of a dotted config name (kind from the dataclass default, doc from its metadata)."""
    cfg = ModelConfig()
    obj, leaf = _owner(cfg, name)
    if leaf not in {f.name for f in dataclasses.fields(obj)}:
        raise KeyError(name)
    return FormField(name, _kind(getattr(obj, leaf)), field_doc(obj, leaf), CHOICES.get(name, ()))


def main_fields() -> list[FormField]:
    return [form_field(n) for n in MAIN_FIELDS]


def preset_values(preset: str) -> dict[str, Any]:
    """The main fields' values in a preset, as JSON-friendly values (tuples become lists)."""
    cfg = get_preset(preset)
    return {n: list(v) if isinstance(v := get_value(cfg, n), tuple) else v for n in MAIN_FIELDS}


def format_value(value: Any) -> str:
    """A value as core.config's override parser reads it (lists comma-joined, bools true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def clean_values(preset: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` restricted to the main fields with a usable type (others fall back to the preset's)."""
    base = preset_values(preset)
    out = dict(base)
    for name, default in base.items():
        v = values.get(name, default)
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            v = type(default)(v) if ok else v
        elif isinstance(default, list):
            ok = isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
            v = list(v) if ok else v
        else:
            ok = isinstance(v, str)
        if ok:
            out[name] = v
    return out


def parse_overrides(text: str) -> list[str]:
    """Extra 'section.key=value' overrides: one per line or separated by spaces; '#' starts a comment."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        out.extend(tok for tok in shlex.split(line) if tok)
    bad = [o for o in out if "=" not in o or not o.split("=", 1)[0]]
    if bad:
        raise ValueError(f"override '{bad[0]}' must look like section.key=value")
    return out


def build_argv(data: str, outdir: str, preset: str, values: dict[str, Any], device: str = "auto",
               gpus: int = 1, overrides: str = "", resume: bool = False) -> list[str]:
    """The arguments of `python -m core.train` for the form (without the interpreter and the -m).

    Main fields equal to the preset's value are left out; `overrides` ('section.key=value' lines)
    follow as --set options. With resume, `--resume auto` continues the run in `outdir` (whose config
    is kept: only train.* overrides are passed on, as core.train allows).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}'")
    argv = ["--data", data, "--outdir", outdir, "--preset", preset, "--device", device]
    if gpus > 1:
        argv += ["--gpus", str(gpus)]
    base = preset_values(preset)
    for name, value in clean_values(preset, values).items():
        if value != base[name]:
            argv += [f"--{name}", format_value(value)]
    for o in parse_overrides(overrides):
        if not resume or o.startswith("train."):  # a resumed run keeps its config but for train.*
            argv.append(f"--set={o}")
    if resume:
        argv += ["--resume", "auto"]
    return argv


def launch_command(argv: list[str], gpus: int = 1) -> list[str]:
    """The full command: `python -m core.train ARGV`, or torchrun with `gpus` processes.

    torchrun is started directly (not through core.train's own relaunch) so that stopping signals
    the worker processes themselves (viewer/run_processes.py).
    """
    if gpus > 1:
        rest = [a for i, a in enumerate(argv) if a != "--gpus" and (i == 0 or argv[i - 1] != "--gpus")]
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                "-m", "core.train", *rest]
    return [sys.executable, "-m", "core.train", *argv]
