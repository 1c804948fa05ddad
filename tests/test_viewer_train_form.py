"""The training form (viewer/train_form.py): fields from the typed config, argv for core.train.

Oracle for the round trip: the config built directly (a preset with the typed values set as
attributes), against the config core.train resolves from the generated argv (its own parser,
core.config_cli's overrides and core.config's string parsing).
"""

import dataclasses
import sys

import pytest

from core.config import PRESETS, ModelConfig, TrainConfig, get_preset
from core.train import build_parser, resolve_config
from viewer import train_form as tf
from viewer.state import ViewerState, state_from_dict, state_to_dict


def resolve(argv: list[str]) -> ModelConfig:
    """The config core.train resolves from argv (a fresh start; the dataset is not read)."""
    return resolve_config(build_parser().parse_args(argv), None, read_dataset=False)


def test_main_fields_carry_the_config_docs_and_types():
    fields = {f.name: f for f in tf.main_fields()}
    assert list(fields) == list(tf.MAIN_FIELDS)
    docs = {f.name: f.metadata["doc"] for f in dataclasses.fields(TrainConfig)}
    for name, f in fields.items():
        leaf = name.split(".", 1)[1]
        assert f.doc == docs[leaf] and f.doc  # the tooltip is the dataclass field's own doc
    assert fields["train.kimg"].kind == "float" and fields["train.batch"].kind == "int"
    assert fields["train.metrics"].kind == "list" and fields["train.patch_dist"].choices == ("beta", "uniform", "full")
    for name in ("kimg", "batch", "g_lr", "d_lr", "r1_gamma", "patch_beta_end", "snapshot_ticks", "metrics"):
        assert f"train.{name}" in fields
    with pytest.raises(KeyError):
        tf.form_field("train.no_such_field")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_argv_round_trips_to_the_same_config(preset):
    values = tf.preset_values(preset)
    edits = {"train.kimg": 12.5, "train.batch": 8, "train.g_lr": 0.00123456789, "train.r1_gamma": 0.3,
             "train.patch_dist": "uniform", "train.patch_beta_end": 0.7, "train.snapshot_ticks": 3,
             "train.metrics": ["kid1k", "fid2k"], "train.workers": 0}
    values.update(edits)
    argv = tf.build_argv("data/x.zip", "runs/x", preset, values, "cpu", 1,
                         "render.num_coarse=7\n generator.use_noise=false  # comment\ncamera.look_at=0.1,0,0.2")
    got = resolve(argv)
    expected = get_preset(preset)
    for name, v in edits.items():
        tf.set_value(expected, name, tuple(v) if isinstance(v, list) else v)
    expected.render.num_coarse, expected.generator.use_noise = 7, False
    expected.camera.look_at = (0.1, 0.0, 0.2)
    assert got == expected
    args = build_parser().parse_args(argv)
    assert (args.data, args.outdir, args.preset, args.device, args.gpus) == ("data/x.zip", "runs/x", preset, "cpu", 1)


def test_only_changed_fields_are_passed_and_empty_metrics_survive():
    values = tf.preset_values("demo")
    argv = tf.build_argv("d", "o", "demo", values)
    assert not [a for a in argv if a.startswith("--train.")]
    assert resolve(argv) == get_preset("demo")
    values["train.metrics"] = []
    argv = tf.build_argv("d", "o", "demo", values)
    assert argv[argv.index("--train.metrics") + 1] == ""
    assert resolve(argv).train.metrics == ()


def test_resume_keeps_only_train_overrides_and_torchrun_for_several_processes():
    argv = tf.build_argv("d", "o", "demo", {}, "cpu", 2, "train.seed=3 render.num_fine=2", resume=True)
    assert argv[-2:] == ["--resume", "auto"]
    assert "--set=train.seed=3" in argv and not any("render.num_fine" in a for a in argv)
    cmd = tf.launch_command(argv, 2)
    assert cmd[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[5:7] == ["-m", "core.train"] and "--gpus" not in cmd and "2" not in cmd[7:]
    assert tf.launch_command(tf.build_argv("d", "o", "demo", {}), 1)[:3] == [sys.executable, "-m", "core.train"]
    with pytest.raises(ValueError):
        tf.build_argv("d", "o", "demo", {}, overrides="not-an-override")


def test_values_of_the_wrong_type_fall_back_to_the_preset():
    base = tf.preset_values("demo")
    got = tf.clean_values("demo", {"train.kimg": "lots", "train.batch": 4.0, "train.mirror": True,
                                   "train.metrics": [1, 2], "train.augment": "none", "train.seed": True})
    assert got["train.kimg"] == base["train.kimg"] and got["train.batch"] == 4 and isinstance(got["train.batch"], int)
    assert got["train.metrics"] == base["train.metrics"] and got["train.augment"] == "none"
    assert got["train.seed"] == base["train.seed"] and "train.mirror" not in got


def test_train_state_round_trips_through_the_session_dict():
    s = ViewerState()
    s.train.values = {"train.kimg": 3.0, "train.metrics": []}
    s.train.outdir, s.train.gpus, s.train.auto_load = "runs/abc", 2, False
    back = state_from_dict(state_to_dict(s))
    assert back.train == s.train
    warnings = []
    bad = state_from_dict({"train": {"values": [1, 2], "preset": "nope", "gpus": 0, "device": "tpu"}}, warnings)
    assert bad.train.values == {} and bad.train.preset == "demo" and bad.train.gpus == 1 and bad.train.device == "auto"
    assert warnings
