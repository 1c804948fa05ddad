"""Training panel: make a dataset, fill in the form generated from the typed config, start / stop /
resume / attach a `python -m core.train` run in its own process, follow it live.

The run is a separate process (viewer/train_job.py, viewer/run_processes.py): closing the viewer
leaves it training, and a later viewer re-attaches by its folder. `update(app)` runs every frame
(even when this tab is hidden): it tails stats.jsonl, notices the end of the run and, with
"auto-load newest snapshot", opens each new snapshot in the view keeping the camera.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui, implot

from core.config import PRESETS

from .. import run_processes as rp
from .. import train_form as tf
from ..train_job import ToolJob, TrainJob, newest_snapshot
from .common import combo, hint, message
from .path_dialog import PathDialog

if TYPE_CHECKING:
    from ..app_api import ViewerApi

PLOT_H = 150.0


class TrainingUi:
    """The panel's runtime objects (not saved in the session: the run folder is)."""

    def __init__(self, app: ViewerApi):
        t = app.state.train
        t.values = tf.clean_values(t.preset, t.values)
        self.fields = tf.main_fields()
        self.job: TrainJob | None = None
        self.tool: ToolJob | None = None
        self.tool_what = ""
        self.message = ""
        self.loaded: Path | None = None  # the snapshot auto-loaded last
        self.loads = 0  # snapshots auto-loaded so far
        self.picker = PathDialog("Choose a path")
        self._reattach(app)

    def _reattach(self, app: ViewerApi) -> None:
        """A run still going in the session's output folder (started by an earlier viewer, or by hand)
        is followed again at start, and with --attach any run there, finished too; its current
        snapshot is not reloaded (only newer ones are)."""
        out = Path(app.state.train.outdir).expanduser()
        info = rp.read_pid_file(out) if out.is_dir() else None
        if app.options.attach_run or (info is not None and rp.alive(info)):
            self.job = TrainJob(out)
            self.job.attach()
            self.loaded = self.job.snapshot

    def close(self) -> None:
        if self.tool is not None:
            self.tool.cancel()


def ui(app: ViewerApi) -> TrainingUi:
    if app.training is None:
        app.training = TrainingUi(app)
    return app.training


def update(app: ViewerApi) -> None:
    """Per frame: follow the run and the dataset tool, auto-load new snapshots."""
    u = ui(app)
    if u.tool is not None:
        res = u.tool.result()
        if res is not None:
            ok, last = res
            u.message = f"{u.tool_what}: {last}" if ok else f"{u.tool_what} failed: {last}"
            u.tool = None
    job = u.job
    if job is None:
        return
    job.poll()
    snap = job.snapshot
    if app.state.train.auto_load and snap is not None and snap != u.loaded and app.loader.loading is None:
        u.loaded = snap
        u.loads += 1
        app.open_model(str(snap), keep_camera=True)


# ---------------------------------------------------------------------------------------------- actions

def make_synthetic(app: ViewerApi) -> None:
    t, u = app.state.train, ui(app)
    out = t.data if t.data.endswith(".zip") else str(Path(t.data) / "synth.zip")
    t.data = out
    u.tool_what = f"synthetic set {out}"
    u.tool = ToolJob(["-m", "core.dataset_tool", "synthetic", "--out", out, "--num-objects", str(t.synth_objects),
                      "--views", str(t.synth_views), "--res", str(t.synth_res)], Path(out + ".log"))
    u.message = f"making {out} ..."


def render_meshes(app: ViewerApi) -> None:
    t, u = app.state.train, ui(app)
    if not t.meshes_dir:
        u.message = "type a folder of meshes to render first"
        return
    out = t.data if t.data.endswith(".zip") else str(Path(t.data) / "objects.zip")
    t.data = out
    u.tool_what = f"rendered set {out}"
    u.tool = ToolJob(["-m", "core.dataset_tool", "render", "--meshes", t.meshes_dir, "--out", out,
                      "--views", str(t.render_views), "--res", str(t.synth_res), "--up", t.render_up],
                     Path(out + ".log"))
    u.message = f"rendering {t.meshes_dir} -> {out} ..."


def command(app: ViewerApi, resume: bool = False) -> list[str]:
    t = app.state.train
    argv = tf.build_argv(t.data, t.outdir, t.preset, t.values, t.device, t.gpus, t.overrides, resume)
    return tf.launch_command(argv, t.gpus)


def start(app: ViewerApi, resume: bool = False) -> None:
    """Start a fresh run (or resume the one in the output folder) as a separate process."""
    t, u = app.state.train, ui(app)
    if u.job is not None and u.job.running:
        u.message = f"a run is going in {u.job.run_dir}: stop it first"
        return
    out = Path(t.outdir).expanduser()
    if not resume and newest_snapshot(out) is not None:
        u.message = f"'{out}' already holds a run: Resume it, or choose another output folder"
        return
    if resume and newest_snapshot(out) is None:
        u.message = f"no snapshot in '{out}' to resume from"
        return
    if not resume and not Path(t.data).expanduser().exists():
        u.message = f"no dataset at '{t.data}': make one with the buttons above"
        return
    try:
        cmd = command(app, resume)
    except ValueError as e:
        u.message = str(e)
        return
    u.job = TrainJob(out)
    u.job.start(cmd)
    u.loaded = newest_snapshot(out) if resume else None  # resuming: only snapshots newer than the last
    u.message = ""


def stop(app: ViewerApi) -> None:
    u = ui(app)
    if u.job is not None:
        u.job.stop(app.state.train.stop_timeout_s)


def attach(app: ViewerApi) -> None:
    """Follow the run in the output folder (running or finished)."""
    u = ui(app)
    if u.job is not None and u.job.running and u.job.proc is not None:
        u.message = "this viewer's run is still going: stop it first"
        return
    u.job = TrainJob(app.state.train.outdir)
    u.job.attach()
    u.loaded = None
    u.message = ""


# ---------------------------------------------------------------------------------------------- drawing

def _browse_w() -> float:
    return imgui.calc_text_size("...").x + imgui.get_style().frame_padding.x * 2 + imgui.get_style().item_spacing.x


def _tooltip(text: str) -> None:
    if text and imgui.is_item_hovered():
        imgui.set_tooltip(text)


def _field(t, f: tf.FormField) -> None:
    v = t.values.get(f.name)
    label = f.label
    if f.kind == "bool":
        _, t.values[f.name] = imgui.checkbox(label, bool(v))
    elif f.kind == "int":
        changed, nv = imgui.input_int(label, int(v))
        if changed:
            t.values[f.name] = max(nv, 0)
    elif f.kind == "float":
        changed, nv = imgui.input_float(label, float(v), 0.0, 0.0, "%.6g")
        if changed:
            t.values[f.name] = float(nv)
    elif f.kind == "list":
        changed, text = imgui.input_text(label, ",".join(v))
        if changed:
            t.values[f.name] = [s.strip() for s in text.split(",") if s.strip()]
    elif f.choices:
        _, t.values[f.name] = combo(label, str(v), f.choices)
    else:
        _, t.values[f.name] = imgui.input_text(label, str(v))
    _tooltip(f"{f.name}: {f.doc}")


def _path_row(u: TrainingUi, obj, attr: str, tip: str, browse_tip: str, **picker_kw) -> None:
    """A path field filling the row but for a "..." button that opens the path picker on it
    (widget ids ##attr and ...##attr)."""
    imgui.set_next_item_width(-_browse_w())
    _, value = imgui.input_text(f"##{attr}", getattr(obj, attr))
    setattr(obj, attr, value)
    _tooltip(tip)
    imgui.same_line()
    if imgui.button(f"...##{attr}"):
        u.picker.open(getattr(obj, attr), lambda p: setattr(obj, attr, p), **picker_kw)
    _tooltip(browse_tip)


def _dataset(app: ViewerApi, u: TrainingUi) -> None:
    t = app.state.train
    imgui.separator_text("Dataset")
    _path_row(u, t, "data", "dataset folder or .zip with a dataset.json (also where the buttons below write)",
              "browse for a dataset .zip or folder", allow_dir=True)
    busy = u.tool is not None
    imgui.begin_disabled(busy)
    if imgui.button("Make synthetic"):
        make_synthetic(app)
    _tooltip("python -m core.dataset_tool synthetic: procedural objects, seconds, no downloads")
    imgui.same_line()
    imgui.set_next_item_width(100)
    _, (t.synth_objects, t.synth_views, t.synth_res) = imgui.input_int3("obj/views/res",
                                                                        [t.synth_objects, t.synth_views, t.synth_res])
    if imgui.button("Render meshes"):
        render_meshes(app)
    _tooltip("python -m core.dataset_tool render: a Megascans-like set from a folder of meshes (EGL)")
    imgui.same_line()
    imgui.set_next_item_width(-60 - _browse_w())
    _, t.meshes_dir = imgui.input_text("##meshes", t.meshes_dir)
    _tooltip("folder of meshes (searched recursively); views from views above, up axis:")
    imgui.same_line()
    if imgui.button("...##meshes"):
        u.picker.open(t.meshes_dir, lambda p: setattr(t, "meshes_dir", p), want_dir=True)
    imgui.same_line()
    imgui.set_next_item_width(-1)
    _, t.render_up = combo("##up", t.render_up, ("y", "z"))
    imgui.end_disabled()
    if busy:
        imgui.same_line()
        if imgui.small_button("Cancel tool"):
            u.tool.cancel()


def _options(app: ViewerApi, u: TrainingUi) -> None:
    t = app.state.train
    imgui.set_next_item_open(u.job is None or not u.job.running, imgui.Cond_.appearing)
    if not imgui.collapsing_header("Options"):
        return
    imgui.push_item_width(imgui.get_content_region_avail().x * 0.5)
    changed, preset = combo("preset", t.preset, tuple(PRESETS))
    if changed:
        t.preset, t.values = preset, tf.preset_values(preset)
    _tooltip("the named config the run starts from (core/config.py); the fields below override it")
    imgui.same_line()
    if imgui.small_button("Reset"):
        t.values = tf.preset_values(t.preset)
    _tooltip("the preset's values for every option below")
    for f in u.fields:
        _field(t, f)
    _, t.device = combo("device", t.device, tf.DEVICES)
    _tooltip("auto: CUDA when available, else CPU")
    changed, g = imgui.input_int("gpus", t.gpus)
    if changed:
        t.gpus = min(max(g, 1), 64)
    _tooltip("processes; more than 1 launches torchrun (GPUs, or gloo CPU processes with device cpu)")
    imgui.pop_item_width()
    if imgui.tree_node("More overrides"):
        _, t.overrides = imgui.input_text_multiline("##overrides", t.overrides, imgui.ImVec2(-1, 80))
        hint("any config field, one 'section.key=value' per line (python -m core.train --help lists them)")
        imgui.tree_pop()


def _run_controls(app: ViewerApi, u: TrainingUi) -> None:
    t = app.state.train
    imgui.separator_text("Run")
    _path_row(u, t, "outdir", "the run folder: config.json, stats.jsonl, snapshots, train.log, train.pid.json",
              "browse for the run folder (a new run: type a new name after the folder)", want_dir=True)
    running = u.job is not None and u.job.running
    imgui.begin_disabled(running)
    if imgui.button("Start"):
        start(app)
    imgui.same_line()
    if imgui.button("Resume"):
        start(app, resume=True)
    _tooltip("continue the run in the output folder from its newest snapshot (--resume auto)")
    imgui.same_line()
    if imgui.button("Attach"):
        attach(app)
    _tooltip("follow the run in the output folder: running (started elsewhere) or finished")
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(not running or u.job.status == "stopping")
    if imgui.button("Stop"):
        stop(app)
    _tooltip("SIGTERM: the run writes a snapshot and exits; killed after the stop timeout")
    imgui.end_disabled()
    _, t.auto_load = imgui.checkbox("auto-load newest snapshot", t.auto_load)
    _tooltip("open each new snapshot in the view, keeping the camera")
    try:
        cmd = " ".join(command(app)[1:])
        if imgui.tree_node("Command line"):
            hint("$ python " + cmd)
            if imgui.small_button("Copy"):
                imgui.set_clipboard_text("python " + cmd)
            imgui.tree_pop()
    except ValueError as e:
        message(str(e))
    message(u.message)


def _status(app: ViewerApi, u: TrainingUi) -> None:
    job = u.job
    if job is None:
        return
    pid = f" pid {job.info.pid}" if job.info is not None else ""
    imgui.text(f"{job.status}{pid}: {job.run_dir}")
    message(job.message if job.status in ("failed",) else None)
    if job.message and job.status != "failed":
        hint(job.message)
    p = job.progress()
    if p is not None:
        imgui.progress_bar(p.fraction, imgui.ImVec2(-1, 0), p.text())
    if job.snapshot is not None:
        hint(f"newest snapshot {job.snapshot.name}" + (f" (auto-loaded {u.loads})" if u.loads else ""))


def _plot(title: str, tail, names: list[str]) -> None:
    if not names or not implot.begin_plot(title, imgui.ImVec2(-1, PLOT_H)):
        return
    implot.setup_axes("kimg", "", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
    for name in names:
        s = tail.series[name]
        xs, ys = np.asarray(s.xs, dtype=np.float64), np.asarray(s.ys, dtype=np.float64)
        if len(xs) == 1:
            implot.plot_scatter(name, xs, ys)
        else:
            implot.plot_line(name, xs, ys)
    implot.end_plot()


def _plots(u: TrainingUi) -> None:
    job = u.job
    if job is None or not job.tail.records:
        return
    tail = job.tail
    _plot("losses", tail, tail.loss_names())
    _plot("G's extra terms", tail, tail.g_term_names())
    _plot("metrics", tail, tail.metric_names())
    _plot("augment p, D real sign", tail, [k for k in ("augment_p", "D_real_sign") if k in tail.series])
    if imgui.tree_node("train.log"):
        imgui.text_wrapped(job.log_tail(2000))
        imgui.tree_pop()


def draw(app: ViewerApi) -> None:
    u = ui(app)
    _dataset(app, u)
    _run_controls(app, u)
    _status(app, u)
    _plots(u)
    _options(app, u)
    u.picker.draw()
