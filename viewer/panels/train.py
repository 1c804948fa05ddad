"""Training panel: make a dataset, fill in the form generated from the typed config, start / stop /
resume / attach a `python -m core.train` run in its own process, follow it live. It draws; the
actions and the run being followed are the app's `TrainingController` (viewer/train_controller.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui, implot

from core.config import PRESETS

from .. import train_form as tf
from ..train_controller import TrainingController
from .common import combo, hint, message
from .path_dialog import PathDialog

if TYPE_CHECKING:
    from ..app_api import ViewerApi

PLOT_H = 150.0


def ui(app: ViewerApi) -> TrainingController:
    """The app's training controller, with the panel's path dialog."""
    u = app.training
    if u.picker is None:
        u.picker = PathDialog("Choose a path")
    return u


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


def _path_row(u: TrainingController, obj, attr: str, tip: str, browse_tip: str, **picker_kw) -> None:
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


def _dataset(app: ViewerApi, u: TrainingController) -> None:
    t = app.state.train
    imgui.separator_text("Dataset")
    _path_row(u, t, "data", "dataset folder or .zip with a dataset.json (also where the buttons below write)",
              "browse for a dataset .zip or folder", allow_dir=True)
    busy = u.tool is not None
    imgui.begin_disabled(busy)
    if imgui.button("Make synthetic"):
        u.make_synthetic()
    _tooltip("python -m core.dataset_tool synthetic: procedural objects, seconds, no downloads")
    imgui.same_line()
    imgui.set_next_item_width(100)
    _, (t.synth_objects, t.synth_views, t.synth_res) = imgui.input_int3("obj/views/res",
                                                                        [t.synth_objects, t.synth_views, t.synth_res])
    if imgui.button("Render meshes"):
        u.render_meshes()
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


def _options(app: ViewerApi, u: TrainingController) -> None:
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


def _run_controls(app: ViewerApi, u: TrainingController) -> None:
    t = app.state.train
    imgui.separator_text("Run")
    _path_row(u, t, "outdir", "the run folder: config.json, stats.jsonl, snapshots, train.log, train.pid.json",
              "browse for the run folder (a new run: type a new name after the folder)", want_dir=True)
    running = u.job is not None and u.job.running
    imgui.begin_disabled(running)
    if imgui.button("Start"):
        u.start()
    imgui.same_line()
    if imgui.button("Resume"):
        u.start(resume=True)
    _tooltip("continue the run in the output folder from its newest snapshot (--resume auto)")
    imgui.same_line()
    if imgui.button("Attach"):
        u.attach()
    _tooltip("follow the run in the output folder: running (started elsewhere) or finished")
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(not running or u.job.status == "stopping")
    if imgui.button("Stop"):
        u.stop()
    _tooltip("SIGTERM: the run writes a snapshot and exits; killed after the stop timeout")
    imgui.end_disabled()
    _, t.auto_load = imgui.checkbox("auto-load newest snapshot", t.auto_load)
    _tooltip("open each new snapshot in the view, keeping the camera")
    try:
        cmd = " ".join(u.command()[1:])
        if imgui.tree_node("Command line"):
            hint("$ python " + cmd)
            if imgui.small_button("Copy"):
                imgui.set_clipboard_text("python " + cmd)
            imgui.tree_pop()
    except ValueError as e:
        message(str(e))
    message(u.message)


def _status(app: ViewerApi, u: TrainingController) -> None:
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


def _camera_histogram(tail) -> None:
    """Bars of the newest learned-camera histogram, one plot per parameter the prior does not fix."""
    h = tail.camera_histogram()
    if h is None:
        return
    for name, v in h.items():
        if not isinstance(v, dict) or "counts" not in v:
            continue
        lo, hi = v["range"]
        counts = np.asarray(v["counts"], dtype=np.float64)
        width = (hi - lo) / max(len(counts), 1)
        xs = lo + width * (np.arange(len(counts)) + 0.5)
        if implot.begin_plot(f"learned {name} at kimg {h.get('kimg', 0):.1f}", imgui.ImVec2(-1, PLOT_H * 0.6)):
            implot.setup_axes(name, "cameras", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            implot.plot_bars(name, xs, counts, width * 0.9)
            implot.end_plot()


def _plots(u: TrainingController) -> None:
    job = u.job
    if job is None or not job.tail.records:
        return
    tail = job.tail
    _plot("losses", tail, tail.loss_names())
    _plot("G's extra terms", tail, tail.g_term_names())
    _plot("metrics", tail, tail.metric_names())
    _plot("augment p, D real sign", tail, [k for k in ("augment_p", "D_real_sign") if k in tail.series])
    # 3DGP: the learned camera distribution, its regulariser, distillation and the depth adaptor
    _plot("learned cameras: means", tail, tail.names_with("camera/", ("_mean",)))
    _plot("learned cameras: stds", tail, tail.names_with("camera/", ("_std",)))
    _plot("camera EMD (x multiplier), KD, depth adaptor", tail,
          tail.names_with("camera/", ("emd_mult", "mean_forcing", "loss")) + tail.names_with("kd/")
          + tail.names_with("depth/"))
    _camera_histogram(tail)
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
