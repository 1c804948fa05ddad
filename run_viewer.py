"""EpiGRAF Studio's desktop viewer.

    python run_viewer.py [CKPT | RUN_DIR | demo | random:PRESET] [--device auto|cpu|cuda]
    python run_viewer.py CKPT --screenshot out.png [--frames N] [--camera yaw,pitch[,radius[,fov]]] [--seed S] [--class K]
    python run_viewer.py --attach RUN_DIR     (follow a training run, e.g. one started with core.train)

With no model argument it reopens the last session's model (else the default model). The
scripted mode (--screenshot) renders the view at full quality, saves it, and exits; it neither
reads nor writes the session. Without a display or a usable OpenGL 3.3 context it prints one line
saying what to do and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python run_viewer.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", nargs="?", default=None,
                   help="checkpoint file, run folder (newest snapshot), demo or random:PRESET (default: last session's, else demo)")
    p.add_argument("--ckpt", dest="ckpt_opt", default=None, help="the same as the positional argument")
    p.add_argument("--attach", type=Path, default=None, metavar="RUN_DIR",
                   help="follow this training run (running or finished) in the Training panel; without a model "
                        "argument, open its newest snapshot")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seed", type=int, default=None, help="latent seed to show")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index, for a class-conditional model")
    p.add_argument("--trunc", type=float, default=None, help="truncation psi")
    p.add_argument("--camera", default=None, help="yaw,pitch[,radius[,fov]]: radians, radians, units, degrees")
    p.add_argument("--mode", choices=["rgb", "depth", "opacity", "normals"], default=None, help="render mode")
    p.add_argument("--raw", action="store_true",
                   help="EG3D models: show the raw neural image (before the super-resolution) in RGB mode")
    p.add_argument("--res", type=int, default=None, help="full-quality render resolution")
    p.add_argument("--screenshot", type=Path, default=None, help="scripted: save the full-quality render here and exit")
    p.add_argument("--window-screenshot", type=Path, default=None,
                   help="scripted: also save the whole window here (with --screenshot)")
    p.add_argument("--frames", type=int, default=3, help="scripted: GUI frames to run at least (default 3)")
    p.add_argument("--timeout", type=float, default=300.0, help="scripted: give up after this many seconds")
    p.add_argument("--no-session", action="store_true", help="neither restore nor save the session")
    p.add_argument("--size", default="1440x900", help="window size WxH (default 1440x900)")
    return p


def build_state(args: argparse.Namespace, device, window_size: tuple[int, int]):
    """The viewer state (the session's, then the command line on top) and the app options.

    A scripted run (--screenshot) or --no-session starts from defaults and never writes the session;
    a model given on the command line that differs from the session's starts at its mean camera.
    """
    from core.checkpoint import SNAPSHOT_GLOB
    from viewer.app import AppOptions
    from viewer.model import default_model_spec
    from viewer.session import load_session
    from viewer.state import ViewerState

    spec = args.ckpt_opt or args.ckpt
    use_session = not (args.screenshot is not None or args.no_session)
    state = load_session() if use_session else ViewerState()
    if args.attach is not None:
        state.train.outdir = str(args.attach)
        if spec is None and any(args.attach.glob(SNAPSHOT_GLOB)):
            spec = str(args.attach)
    fresh_model = spec is not None and spec != state.model.spec
    if spec is not None:
        state.model.spec = spec
    elif not use_session or not state.model.spec:
        state.model.spec = default_model_spec()
    if args.seed is not None:
        state.latent.seed, state.latent.w_path, state.latent.interp = args.seed, "", False
    if args.class_idx is not None:
        state.latent.class_idx, state.latent.class_placed = max(0, args.class_idx), True
    if args.trunc is not None:
        state.latent.psi = args.trunc
    if args.mode is not None:
        state.render.mode = args.mode
    if args.raw:
        state.render.raw_image = True
    if args.res is not None:
        state.render.resolution = max(16, args.res)
    camera = args.camera or ("mean" if (not use_session or fresh_model) else None)  # None: the session's
    options = AppOptions(device=device, screenshot=args.screenshot, window_screenshot=args.window_screenshot,
                         frames=max(1, args.frames), camera_text=camera, timeout_s=args.timeout,
                         use_session=use_session, window_size=window_size, attach_run=args.attach is not None)
    return state, options


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scripted = args.screenshot is not None
    if args.window_screenshot is not None and not scripted:
        print("error: --window-screenshot needs --screenshot PATH", file=sys.stderr)
        return 2
    if args.attach is not None and not args.attach.is_dir():
        print(f"error: no run folder '{args.attach}' to attach to: give the --outdir of a core.train run",
              file=sys.stderr)
        return 2
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size '{args.size}' must look like 1440x900", file=sys.stderr)
        return 2

    from core.config import CameraConfig
    from core.errors import UserError
    from core.runtime import resolve_device
    from viewer.camera import parse_camera

    if args.camera is not None:
        try:
            parse_camera(args.camera, CameraConfig())  # the format; values are applied to the model's prior
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    try:
        device = resolve_device(args.device)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from core.kernels import preload_triton
    preload_triton(device)  # before any GL context: Triton imported after Mesa's LLVM crashes the process

    try:
        from viewer.runner import display_problem
    except ImportError as e:
        print(f"error: the viewer needs imgui-bundle and PyOpenGL ({e}): pip install -r requirements.txt",
              file=sys.stderr)
        return 2
    problem = display_problem()
    if problem:
        print(f"error: {problem}: run under `xvfb-run -a python run_viewer.py ...`, or use "
              f"`python -m core.generate` for images and videos", file=sys.stderr)
        return 2

    from viewer.app import ViewerApp
    from viewer.runner import run

    state, options = build_state(args, device, (width, height))
    app = ViewerApp(state, options)
    return run(app)


if __name__ == "__main__":
    sys.exit(main())
