"""Performance panel: frame and render time plots (ImPlot), FPS, quality, cache and worker counters."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui, implot

from .common import hint

if TYPE_CHECKING:
    from ..app_api import ViewerApi


def draw(app: ViewerApi) -> None:
    now = time.monotonic()
    perf, w = app.perf, app.worker
    frame_ms = np.array(perf.frame_ms, dtype=np.float64)
    gui_fps = 1000.0 / frame_ms[-30:].mean() if frame_ms.size else 0.0
    imgui.text(f"GUI {gui_fps:5.1f} fps | new frames {perf.display_fps(now):4.1f}/s")
    r = app.result
    if r is not None:
        q = r.quality
        neural = f" (neural {q.neural_res}^2)" if q.neural_res is not None else ""
        imgui.text(f"on screen: {q.level} {q.resolution}^2{neural}, {q.num_coarse}+{q.num_fine} samples, "
                   f"{r.render_s * 1000:.0f} ms, planes {'cached' if r.planes_cached else 'computed'}")
    first = f"{perf.first_frame_s:.2f} s" if perf.first_frame_s is not None else "-"
    refine = f"{perf.full_refine_s:.2f} s" if perf.full_refine_s is not None else "-"
    imgui.text(f"first frame {first} | last full-quality refine {refine}")
    s, c = w.stats, app.engine.cache
    hint(f"requests {s.submitted}, rendered {s.rendered}, dropped {s.dropped}, cancelled {s.cancelled}; "
         f"plane cache {c.hits} hits / {c.misses} misses; torch threads {app.torch_threads}")
    b = app.bakes.stats
    if b.baked:
        hint(f"baked preview: {b.baked} bakes (last {b.last_s:.2f} s on the {b.thread} thread, upload "
             f"{b.upload_s * 1000:.0f} ms), {b.dropped} dropped")
    plot_size = imgui.ImVec2(-1, max(140.0, (imgui.get_content_region_avail().y - 8) / 2))
    if frame_ms.size and implot.begin_plot("frame time (ms)", plot_size):
        implot.setup_axes("frame", "ms", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
        implot.plot_line("GUI frame", frame_ms)
        implot.end_plot()
    times = list(w.render_times)
    if times and implot.begin_plot("render time (ms)", plot_size):
        implot.setup_axes("seconds ago", "ms", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
        for level in ("preview", "full"):
            pts = [(t - now, sec * 1000) for t, sec, lv in times if lv == level]
            if pts:
                xs, ys = (np.array(v, dtype=np.float64) for v in zip(*pts))
                implot.plot_scatter(level, xs, ys)
        implot.end_plot()
