"""Draws the hand-made fields of baked_cases.py with the baked preview's GL pass and saves the
pictures (glReadPixels) for test_baked_preview.py. Run in a subprocess under Xvfb:

    python tests/viewer/gl_baked_driver.py OUT_DIR

A hidden window supplies the OpenGL 3.3 context; OUT_DIR/<case>_<mode>.npy are [H, W, 3] uint8
(row 0 at the top), OUT_DIR/results.json says what was drawn (or the error).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baked_cases as bc  # noqa: E402


def main(out_dir: Path) -> int:
    from imgui_bundle import hello_imgui, immapp

    from viewer import colormaps
    from viewer.baked_preview import BakedPreviewPass
    from viewer.gl import GLUnavailable, require_gl33

    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"partial": True}

    def gui() -> None:
        try:
            try:
                results["gl"] = require_gl33()
            except GLUnavailable as e:
                results.update(partial=False, skip=str(e))
                raise
            p = BakedPreviewPass()
            p.set_lut("grey", colormaps.lut("grey"))
            cams = bc.cameras()
            drawn = []
            for name, (sphere, fog, far_opaque, modes, ramp) in bc.CASES.items():
                p.upload(bc.field(sphere, fog, ramp), name)
                for mode in modes:
                    rng = bc.DEPTH_RANGE if mode == "depth" else (0.0, 1.0)
                    p.draw(cams, bc.IMAGE, mode, bc.BACKGROUND, far_opaque, rng, False)
                    np.save(out_dir / f"{name}_{mode}.npy", p.read_pixels())
                    drawn.append(f"{name}_{mode}")
            results["drawn"] = drawn
            results["partial"] = False
            p.delete()
        except Exception:
            if "skip" not in results:
                results["exception"] = traceback.format_exc()
        save()
        hello_imgui.get_runner_params().app_shall_exit = True

    def save() -> None:
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))

    rp = hello_imgui.RunnerParams()
    rp.app_window_params.window_geometry.size = (64, 64)
    rp.app_window_params.hidden = True
    rp.imgui_window_params.default_imgui_window_type = hello_imgui.DefaultImGuiWindowType.no_default_window
    rp.ini_disable = True
    rp.callbacks.show_gui = gui
    try:
        immapp.run(rp)
    except RuntimeError as e:  # no OpenGL 3.3 window here: the tests skip, saying why
        results.update(partial=False, skip=f"no OpenGL 3.3 window ({str(e).splitlines()[0][:160]})")
        save()
        sys.stdout.flush()
        os._exit(0)  # the native runner is left half set up: skip its destructors
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
