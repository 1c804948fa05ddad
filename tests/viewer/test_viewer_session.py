"""Session persistence: round trip, atomic write, corrupt or odd files ignored with a warning."""

import json

from viewer.session import config_dir, load_session, save_session
from viewer.state import ViewerState, state_from_dict, state_to_dict


def test_round_trip(tmp_path):
    st = ViewerState()
    st.model.spec = "/some/run"
    st.model.remember("/a.pt")
    st.model.remember("/b.pt")
    st.model.remember("/a.pt")
    st.latent.seed, st.latent.psi, st.latent.t = 42, 0.55, 0.25
    st.camera.camera.yaw, st.camera.camera.look_at = 0.7, [0.0, 0.1, 0.0]
    st.render.mode, st.render.background = "depth", [0.2, 0.3, 0.4]
    path = save_session(st, tmp_path / "s.json")
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind
    back = load_session(path)
    assert state_to_dict(back) == state_to_dict(st)
    assert back.model.recent == ["/a.pt", "/b.pt"]


def test_missing_corrupt_and_partial_files(tmp_path):
    warnings = []
    assert state_to_dict(load_session(tmp_path / "none.json", warnings.append)) == state_to_dict(ViewerState())
    assert warnings == []
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert state_to_dict(load_session(bad, warnings.append)) == state_to_dict(ViewerState())
    assert len(warnings) == 1 and "ignoring" in warnings[0]
    bad.write_text("[1, 2]")
    load_session(bad, warnings.append)
    assert len(warnings) == 2
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"latent": {"seed": "x", "psi": 0.5}, "render": {"mode": "xray"},
                                   "camera": {"camera": {"pitch": 99.0, "look_at": [1, 2]}}, "future": 1}))
    st = load_session(partial, warnings.append)
    assert st.latent.seed == 0 and st.latent.psi == 0.5 and st.render.mode == "rgb"
    assert 0 < st.camera.camera.pitch < 3.1416 and st.camera.camera.look_at == [0.0, 0.0, 0.0]
    assert "seed" in warnings[-1]


def test_state_from_dict_coerces_ints():
    st = state_from_dict({"render": {"target_fps": 30, "background": [1, 0, 0]}})
    assert st.render.target_fps == 30.0 and isinstance(st.render.target_fps, float)
    assert st.render.background == [1.0, 0.0, 0.0]


def test_config_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("EPIGRAF_STUDIO_CONFIG_DIR", str(tmp_path))
    assert config_dir() == tmp_path
    monkeypatch.delenv("EPIGRAF_STUDIO_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x"))
    assert config_dir() == tmp_path / "x" / "epigraf-studio"


def test_command_line_on_top_of_the_session(monkeypatch, tmp_path):
    """run_viewer.build_state: the session restores model, camera and latent; the command line wins."""
    import torch

    import run_viewer

    monkeypatch.setenv("EPIGRAF_STUDIO_CONFIG_DIR", str(tmp_path))
    st = ViewerState()
    st.model.spec, st.latent.seed, st.render.mode = "/runs/a", 42, "depth"
    st.camera.camera.yaw, st.camera.placed = 0.9, True
    save_session(st)

    def build(*argv):
        args = run_viewer.build_parser().parse_args(list(argv))
        return run_viewer.build_state(args, torch.device("cpu"), (800, 600))

    state, opts = build()
    assert (state.model.spec, state.latent.seed, state.render.mode) == ("/runs/a", 42, "depth")
    assert opts.camera_text is None and opts.use_session and state.camera.camera.yaw == 0.9  # restored
    state, opts = build("/runs/b", "--seed", "3")
    assert state.model.spec == "/runs/b" and state.latent.seed == 3 and opts.camera_text == "mean"
    state, opts = build("--screenshot", str(tmp_path / "s.png"))  # scripted: defaults, no session
    from viewer.model import default_model_spec
    # the bundled demo model when present (random:demo otherwise)
    assert not opts.use_session and state.model.spec == default_model_spec() and state.latent.seed == 0
    assert state.model.spec.endswith("checkpoints/demo.pt")
    state, opts = build("--camera", "0.1,1.2", "--no-session")
    assert opts.camera_text == "0.1,1.2" and not opts.use_session


def test_attach_follows_a_run_folder(monkeypatch, tmp_path):
    """run_viewer.py --attach RUN: the Training panel's folder is RUN and it is followed from the start
    (finished runs too); without a model argument the view opens RUN's newest snapshot."""
    import types

    import torch

    import run_viewer
    from viewer.train_controller import TrainingController as TrainingUi

    monkeypatch.setenv("EPIGRAF_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    run = tmp_path / "run"
    run.mkdir()

    def build(*argv):
        args = run_viewer.build_parser().parse_args(list(argv))
        return run_viewer.build_state(args, torch.device("cpu"), (800, 600))

    state, opts = build("--attach", str(run), "--no-session")
    assert state.train.outdir == str(run) and opts.attach_run
    assert state.model.spec != str(run)  # nothing to open there yet: the default model
    (run / "network-snapshot-000004.000.pt").write_bytes(b"")
    (run / "stats.jsonl").write_text('{"kimg": 4.0, "tick": 1, "loss_G": 1.5}\n')
    state, opts = build("--attach", str(run), "--no-session")
    assert state.model.spec == str(run)
    state, _ = build("random:demo", "--attach", str(run), "--no-session")
    assert state.model.spec == "random:demo" and state.train.outdir == str(run)

    # the panel follows the finished run at start with --attach (not reloading its current snapshot),
    # and leaves a folder whose run is not alive alone without it
    state, opts = build("--attach", str(run), "--no-session")
    ui = TrainingUi(types.SimpleNamespace(state=state, options=opts))
    assert ui.job is not None and ui.job.status == "finished" and ui.loaded == run / "network-snapshot-000004.000.pt"
    assert ui.job.tail.series["loss_G"].ys == [1.5]
    opts.attach_run = False
    assert TrainingUi(types.SimpleNamespace(state=state, options=opts)).job is None
