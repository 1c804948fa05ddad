"""Model panel: open a checkpoint / run folder / random preset by path or file browser, recent list, snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from core.config import PRESETS
from core.errors import UserError

from ..model import list_snapshots
from .common import hint, line, message

if TYPE_CHECKING:
    from ..app_api import ViewerApi


def draw(app: ViewerApi) -> None:
    m, st = app.model, app.state.model
    # two lines whatever happens (no model, loading, loaded): the controls below never move
    line(f"open: {m.spec}" if m is not None else "no model open", color=None)
    if app.loader.loading:
        line(f"loading {app.loader.loading} ...")
    elif m is not None:
        cfg = m.cfg
        note = m.info.get("meta", {}).get("source_note")  # where it came from, when not one of our files
        fam = f"EG3D (neural {cfg.generator.neural_res}^2 -> SR)" if m.eg3d else "EpiGRAF"
        line(f"{fam}; " + (f"{note}; " if note else "") + f"preset {cfg.name}, {cfg.img_resolution}^2 images, "
             f"planes {cfg.generator.plane_res}^2, {cfg.render.num_coarse}+{cfg.render.num_fine} samples, z {cfg.generator.z_dim}, "
             f"classes {cfg.generator.c_dim}, pose cond {'on' if cfg.generator.pose_cond else 'off'}, "
             f"device {m.device}")
    else:
        line("open a checkpoint below")
    imgui.separator_text("Open")
    changed, app.ui_text["open"] = imgui.input_text("##open_path", app.ui_text["open"],
                                                    imgui.InputTextFlags_.enter_returns_true)
    imgui.same_line()
    if imgui.button("Open") or changed:
        app.open_model(app.ui_text["open"])
    imgui.same_line()
    if imgui.button("Browse..."):
        app.file_dialog.open(app)
    if imgui.is_item_hovered():
        imgui.set_tooltip("pick a checkpoint, run folder or latent in a file browser (Ctrl+O)")
    hint("a checkpoint .pt, an official EpiGRAF or EG3D .pkl, a run folder (its newest snapshot) or random:PRESET" +
         ("; or drop a checkpoint, run folder or .npy latent on the window" if app.drop_enabled else ""))
    for name in PRESETS:
        if imgui.small_button(f"random:{name}"):
            app.ui_text["open"] = f"random:{name}"
            app.open_model(f"random:{name}")
        imgui.same_line()
    imgui.new_line()
    message(app.model_error)  # what went wrong with the last open (below every control above it)
    message(app.messages.get("model"))
    if st.recent:
        imgui.separator_text("Recent")
        for i, spec in enumerate(list(st.recent)):
            if imgui.selectable(f"{spec}##recent{i}", m is not None and spec == m.spec)[0]:
                app.ui_text["open"] = spec
                app.open_model(spec)
    imgui.separator_text("Run folder")
    _, app.ui_text["run_dir"] = imgui.input_text("##run_dir", app.ui_text["run_dir"])
    imgui.same_line()
    if imgui.button("List snapshots"):
        st.run_dir = app.ui_text["run_dir"]
        app.messages.pop("model", None)
    if st.run_dir:
        try:
            snaps = list_snapshots(st.run_dir)
        except UserError as e:
            message(str(e))
            return
        if imgui.button("Open newest"):
            app.open_model(str(snaps[0]))
        for i, p in enumerate(snaps[:30]):
            if imgui.selectable(f"{p.name}##snap{i}", m is not None and m.spec == str(p))[0]:
                app.open_model(str(p))
