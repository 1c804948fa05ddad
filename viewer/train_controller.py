"""The training panel's controller, owned by the app beside the MeshController: the run being followed,
the dataset tool's job, and the actions (make or render a dataset, start / resume / attach / stop a
`python -m core.train` run in its own process).

The run is a separate process (viewer/train_job.py, viewer/run_processes.py): closing the viewer
leaves it training, and a later viewer re-attaches by its folder. `update()` runs every frame (even
when the Training tab is hidden): it tails stats.jsonl, notices the end of the run and, with
"auto-load newest snapshot", opens each new snapshot in the view keeping the camera. No GUI code
here: viewer/panels/train.py draws the panel and calls these actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import run_processes as rp
from . import train_form as tf
from .train_job import ToolJob, TrainJob, newest_snapshot


class TrainingController:
    """The panel's runtime objects (not saved in the session: the run folder is) and its actions."""

    def __init__(self, app: Any):
        self.app = app  # the viewer.app_api.ViewerApi it serves (state, options, loader, open_model)
        t = app.state.train
        t.values = tf.clean_values(t.preset, t.values)
        self.fields = tf.main_fields()
        self.job: TrainJob | None = None
        self.tool: ToolJob | None = None
        self.tool_what = ""
        self.message = ""
        self.loaded: Path | None = None  # the snapshot auto-loaded last
        self.loads = 0  # snapshots auto-loaded so far
        self.picker: Any = None  # the panel's path dialog, made by the panel on first draw
        self._reattach()

    def _reattach(self) -> None:
        """A run still going in the session's output folder (started by an earlier viewer, or by hand)
        is followed again at start, and with --attach any run there, finished too; its current
        snapshot is not reloaded (only newer ones are)."""
        out = Path(self.app.state.train.outdir).expanduser()
        info = rp.read_pid_file(out) if out.is_dir() else None
        if self.app.options.attach_run or (info is not None and rp.alive(info)):
            self.job = TrainJob(out)
            self.job.attach()
            self.loaded = self.job.snapshot

    def close(self) -> None:
        if self.tool is not None:
            self.tool.cancel()

    def update(self) -> None:
        """Per frame: follow the run and the dataset tool, auto-load new snapshots."""
        app = self.app
        if self.tool is not None:
            res = self.tool.result()
            if res is not None:
                ok, last = res
                self.message = f"{self.tool_what}: {last}" if ok else f"{self.tool_what} failed: {last}"
                self.tool = None
        job = self.job
        if job is None:
            return
        job.poll()
        snap = job.snapshot
        if app.state.train.auto_load and snap is not None and snap != self.loaded and app.loader.loading is None:
            self.loaded = snap
            self.loads += 1
            app.open_model(str(snap), keep_camera=True)

    def make_synthetic(self) -> None:
        t = self.app.state.train
        out = t.data if t.data.endswith(".zip") else str(Path(t.data) / "synth.zip")
        t.data = out
        self.tool_what = f"synthetic set {out}"
        self.tool = ToolJob(["-m", "core.dataset_tool", "synthetic", "--out", out, "--num-objects",
                             str(t.synth_objects), "--views", str(t.synth_views), "--res", str(t.synth_res)],
                            Path(out + ".log"))
        self.message = f"making {out} ..."

    def render_meshes(self) -> None:
        t = self.app.state.train
        if not t.meshes_dir:
            self.message = "type a folder of meshes to render first"
            return
        out = t.data if t.data.endswith(".zip") else str(Path(t.data) / "objects.zip")
        t.data = out
        self.tool_what = f"rendered set {out}"
        self.tool = ToolJob(["-m", "core.dataset_tool", "render", "--meshes", t.meshes_dir, "--out", out,
                             "--views", str(t.render_views), "--res", str(t.synth_res), "--up", t.render_up],
                            Path(out + ".log"))
        self.message = f"rendering {t.meshes_dir} -> {out} ..."

    def command(self, resume: bool = False) -> list[str]:
        t = self.app.state.train
        argv = tf.build_argv(t.data, t.outdir, t.preset, t.values, t.device, t.gpus, t.overrides, resume)
        return tf.launch_command(argv, t.gpus)

    def start(self, resume: bool = False) -> None:
        """Start a fresh run (or resume the one in the output folder) as a separate process."""
        t = self.app.state.train
        if self.job is not None and self.job.running:
            self.message = f"a run is going in {self.job.run_dir}: stop it first"
            return
        out = Path(t.outdir).expanduser()
        if not resume and newest_snapshot(out) is not None:
            self.message = f"'{out}' already holds a run: Resume it, or choose another output folder"
            return
        if resume and newest_snapshot(out) is None:
            self.message = f"no snapshot in '{out}' to resume from"
            return
        if not resume and not Path(t.data).expanduser().exists():
            self.message = f"no dataset at '{t.data}': make one with the buttons above"
            return
        try:
            cmd = self.command(resume)
        except ValueError as e:
            self.message = str(e)
            return
        self.job = TrainJob(out)
        self.job.start(cmd)
        self.loaded = newest_snapshot(out) if resume else None  # resuming: only snapshots newer than the last
        self.message = ""

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop(self.app.state.train.stop_timeout_s)

    def attach(self) -> None:
        """Follow the run in the output folder (running or finished)."""
        if self.job is not None and self.job.running and self.job.proc is not None:
            self.message = "this viewer's run is still going: stop it first"
            return
        self.job = TrainJob(self.app.state.train.outdir)
        self.job.attach()
        self.loaded = None
        self.message = ""
