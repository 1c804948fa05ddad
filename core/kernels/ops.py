"""The public render ops: check shapes and dtypes, then dispatch to the reference or to Triton.

impl: "reference" (pure PyTorch, `core.kernels.reference`), "triton" (the fused kernels; CUDA
tensors, or any device under TRITON_INTERPRET=1; anything else raises KernelUnavailable), or
"auto" (Triton for CUDA tensors when it is installed and the op's kernel has passed a one-time check
against the reference on that device; for `march_rays` on CPU tensors the fused Numba loop; else the
reference, logged once per reason), or "numba" (the fused CPU loop of `march_rays`, inference only;
raises KernelUnavailable for other ops, devices, or without numba).

Triton is imported lazily, only when a call is actually dispatched to it: CPU-only code paths
never import it (importing Triton after a Mesa/llvmpipe GL context exists crashes the process).
"""

from __future__ import annotations

import importlib.util
import logging
import os

import torch

from . import reference

log = logging.getLogger("core.kernels")

IMPLS = ("auto", "reference", "triton", "numba")
NUMBA_OPS = ("march_rays",)  # the ops with a fused CPU kernel (`numba_march.py`)
PLANE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_logged: set[str] = set()


class KernelUnavailable(RuntimeError):
    """impl="triton" was asked for on a setup where the Triton kernels cannot run."""


def _log_once(level: int, msg: str) -> None:
    if msg not in _logged:
        _logged.add(msg)
        log.log(level, msg)


def triton_installed() -> bool:
    """True when the triton package can be imported (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def numba_installed() -> bool:
    """True when the numba package can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def resolve_impl(impl: str, op: str, *tensors: torch.Tensor) -> str:
    """'auto' | 'reference' | 'triton' | 'numba' -> 'reference', 'triton' or 'numba' for these tensors."""
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "reference":
        return "reference"
    cuda = all(t.is_cuda for t in tensors)
    if impl == "numba":
        if op not in NUMBA_OPS:
            raise KernelUnavailable(f"{op}: there is no fused CPU kernel for this op (only {', '.join(NUMBA_OPS)}); "
                                    "use impl='auto' or 'reference'")
        if not numba_installed():
            raise KernelUnavailable(f"{op}: impl='numba' needs the numba package (pip install numba)")
        if any(t.device.type != "cpu" for t in tensors):
            raise KernelUnavailable(f"{op}: impl='numba' runs on CPU tensors; use impl='auto' or 'triton' on a GPU")
        return "numba"
    if impl == "triton":
        if not triton_installed():
            raise KernelUnavailable(f"{op}: impl='triton' needs the triton package (pip install triton; Linux x86-64)")
        if not cuda and not interpreter_enabled():
            devs = sorted({str(t.device) for t in tensors})
            raise KernelUnavailable(f"{op}: impl='triton' needs CUDA tensors (got {', '.join(devs)}); "
                                    "set TRITON_INTERPRET=1 before starting Python to run the kernels on CPU "
                                    "(slow, for tests), or use impl='auto' or 'reference'")
        return "triton"
    # auto
    if not cuda and op in NUMBA_OPS and all(t.device.type == "cpu" for t in tensors):
        if numba_installed():
            return "numba"
        _log_once(logging.WARNING, f"core.kernels: numba is not installed; {op} on the CPU uses the PyTorch "
                                   "reference (slower; pip install numba)")
        return "reference"
    if not cuda:
        _log_once(logging.INFO, f"core.kernels: {op} on {tensors[0].device} tensors uses the PyTorch reference "
                                "(the Triton kernels run on CUDA)")
        return "reference"
    if not triton_installed():
        _log_once(logging.WARNING, f"core.kernels: triton is not installed; {op} on CUDA falls back to the "
                                   "PyTorch reference (slower)")
        return "reference"
    return "triton" if verify_triton(op, tensors[0].device) else "reference"


_verified: dict[tuple[str, str], bool] = {}


def verify_triton(op: str, device: torch.device | str) -> bool:
    """Whether the Triton kernel of `op` compiles and matches the reference on `device` (checked once
    per op and device on a tiny case, forward and backward). "auto" uses Triton only when it does, and
    logs a warning with the reason when it does not; impl="triton" never asks."""
    key = (op, str(device))
    if key not in _verified:
        from . import selftest
        try:
            ok, why = selftest.quick(op, device)
        except Exception as e:  # noqa: BLE001 -- a compile or launch failure means: not on this device
            ok, why = False, f"{type(e).__name__}: {str(e).strip()[:200]}"
        if not ok:
            _log_once(logging.WARNING, f"core.kernels: the Triton {op} kernel failed its check on {device} ({why}); "
                                       "'auto' uses the PyTorch reference for it")
        _verified[key] = ok
    return _verified[key]


def preload_triton(device: torch.device | str) -> bool:
    """Import triton now when `device` is CUDA and it is installed (True when it did).

    Call this before any OpenGL/EGL context is created: importing Triton after a Mesa/llvmpipe GL
    context exists crashes the process (their LLVM symbols clash). CPU devices never import it.
    """
    if torch.device(device).type != "cuda" or not triton_installed():
        return False
    import triton  # noqa: F401
    return True


def _numba():
    from . import numba_march  # imports numba (and compiles on the first call)
    return numba_march


def _triton():
    from . import triton_ops  # imports triton: only ever reached for a Triton dispatch
    return triton_ops


def _check(cond: bool, op: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{op}: {msg}")


def _check_planes_points(op: str, planes: torch.Tensor, points: torch.Tensor) -> None:
    _check(planes.ndim == 5 and planes.shape[1] == 3, op, f"planes must be [B, 3, C, H, W], got {tuple(planes.shape)}")
    _check(planes.shape[3] >= 2 and planes.shape[4] >= 2, op, "planes must be at least 2 x 2 texels")
    _check(points.ndim == 3 and points.shape[0] == planes.shape[0] and points.shape[2] == 3, op,
           f"points must be [B, N, 3] with B = {planes.shape[0]}, got {tuple(points.shape)}")
    _check(planes.dtype in PLANE_DTYPES, op, f"planes dtype {planes.dtype} not supported ({PLANE_DTYPES})")
    _check(points.is_floating_point(), op, f"points must be floating point, got {points.dtype}")
    _check(planes.device == points.device, op, f"planes on {planes.device}, points on {points.device}")


def _check_params(op: str, params, channels: int) -> None:
    _check(len(params) == 4, op, "params must be (w0 [Hd, C], b0 [Hd], w1 [4, Hd], b1 [4]), w0 None when folded")
    w0, b0, w1, b1 = params
    hd = channels if w0 is None else w0.shape[0]  # folded: the planes hold w0 f (fold_first_layer)
    _check((w0 is None or (w0.ndim == 2 and w0.shape[1] == channels)) and b0.shape == (hd,) and
           w1.shape == (4, hd) and b1.shape == (4,), op,
           f"params shapes {[None if p is None else tuple(p.shape) for p in params]} do not fit {channels} "
           "plane channels")


def triplane_sample(planes: torch.Tensor, points: torch.Tensor, cube_scale: float, impl: str = "auto",
                    lookup: str = "epigraf") -> torch.Tensor:
    """planes [B, 3, C, H, W], points [B, N, 3] (world) -> features [B, N, C] in the planes' dtype:
    bilinear (zeros outside) lookup of the three planes at points / cube_scale, averaged; lookup
    'epigraf' (xy, xz, yz, align_corners=True) or 'eg3d' (xy, xz, zx, align_corners=False; see
    reference.triplane_sample). Backward: gradients to planes and points (both impls)."""
    _check_planes_points("triplane_sample", planes, points)
    _check(lookup in reference.LOOKUPS, "triplane_sample", f"lookup must be one of {reference.LOOKUPS}, got {lookup!r}")
    if resolve_impl(impl, "triplane_sample", planes, points) == "triton":
        return _triton().triplane_sample(planes, points, cube_scale, lookup)
    return reference.triplane_sample(planes, points, cube_scale, lookup)


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far_opaque: bool,
              stop_transmittance: float = 0.0, impl: str = "auto") -> dict[str, torch.Tensor]:
    """rgb [..., S, C], sigma [..., S] >= 0, t [..., S] ascending -> rgb [..., C], opacity, depth,
    depth_raw [...] and weights [..., S] (see reference.composite). Backward: gradients to rgb and
    sigma (t is treated as a constant by the Triton kernel; it raises if t requires grad). With
    stop_transmittance > 0 (early termination) the op is inference-only."""
    op = "composite"
    _check(sigma.ndim >= 1 and t.shape == sigma.shape, op, f"sigma {tuple(sigma.shape)} and t {tuple(t.shape)} differ")
    _check(rgb.ndim == sigma.ndim + 1 and rgb.shape[:-1] == sigma.shape, op,
           f"rgb must be [..., S, C] with [..., S] = {tuple(sigma.shape)}, got {tuple(rgb.shape)}")
    _check(0.0 <= stop_transmittance < 1.0, op, f"stop_transmittance must be in [0, 1), got {stop_transmittance}")
    if stop_transmittance > 0 and torch.is_grad_enabled() and (rgb.requires_grad or sigma.requires_grad):
        raise ValueError(f"{op}: stop_transmittance > 0 is for inference; it has no backward (run under torch.no_grad)")
    if resolve_impl(impl, op, rgb, sigma, t) == "triton":
        return _triton().composite(rgb, sigma, t, far_opaque, stop_transmittance)
    return reference.composite(rgb, sigma, t, far_opaque, stop_transmittance)


def query_points(planes: torch.Tensor, points: torch.Tensor, cube_scale: float, params, density_shift: float,
                 impl: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The radiance field at points [B, N, 3]: tri-plane lookup + decoder MLP (C -> Hd -> 4, leaky
    ReLU) + softplus(raw + shift) -> rgb [B, N, 3] (raw), sigma [B, N], fp32 (fp64 for fp64 planes).
    params: `TriPlaneDecoder.params()`. Inference: the Triton kernel has no backward (it raises when
    a gradient is being recorded); the reference is differentiable."""
    op = "query_points"
    _check_planes_points(op, planes, points)
    _check_params(op, params, planes.shape[2])
    if resolve_impl(impl, op, planes, points) == "triton":
        _no_grad_for_triton(op, planes, points, *(p for p in params if p is not None))
        return _triton().query_points(planes, points, cube_scale, params, density_shift)
    return reference.query_points(planes, points, cube_scale, params, density_shift)


def march_rays(planes: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor, cube_scale: float,
               params, density_shift: float, far_opaque: bool, stop_transmittance: float = 0.0,
               impl: str = "auto", deltas: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per ray, in one pass: points o + t d, query_points, composite. origins, dirs [B, R, 3], t
    [B, R, S] ascending -> composite()'s outputs (weights [B, R, S] included, for importance
    sampling). deltas [B, R, S]: each sample's interval length instead of the gaps between depths
    (empty-space skipping, `core.render.occupancy.skip_depths`); a sample with delta 0 is not
    evaluated (the Triton kernel does not read its texels). Inference only for the Triton kernel
    (no backward)."""
    op = "march_rays"
    b = planes.shape[0]
    _check(origins.ndim == 3 and origins.shape[0] == b and origins.shape[2] == 3 and dirs.shape == origins.shape, op,
           f"origins and dirs must be [B, R, 3] with B = {b}, got {tuple(origins.shape)}, {tuple(dirs.shape)}")
    _check(t.ndim == 3 and t.shape[:2] == origins.shape[:2], op, f"t must be [B, R, S], got {tuple(t.shape)}")
    _check_planes_points(op, planes, origins)
    _check_params(op, params, planes.shape[2])
    _check(0.0 <= stop_transmittance < 1.0, op, f"stop_transmittance must be in [0, 1), got {stop_transmittance}")
    _check(deltas is None or deltas.shape == t.shape, op,
           f"deltas must be shaped like t {tuple(t.shape)}, got {None if deltas is None else tuple(deltas.shape)}")
    chosen = resolve_impl(impl, op, planes, origins, dirs, t)
    if chosen == "triton":
        _no_grad_for_triton(op, planes, origins, dirs, t, *(p for p in params if p is not None))
        return _triton().march_rays(planes, origins, dirs, t, cube_scale, params, density_shift, far_opaque,
                                    stop_transmittance, deltas)
    if chosen == "numba":
        _no_grad_for_triton(op, planes, origins, dirs, t, *(p for p in params if p is not None))
        return _numba().march_rays(planes, origins, dirs, t, cube_scale, params, density_shift, far_opaque,
                                   stop_transmittance, deltas)
    return reference.march_rays(planes, origins, dirs, t, cube_scale, params, density_shift, far_opaque,
                                stop_transmittance, deltas)


def _no_grad_for_triton(op: str, *tensors: torch.Tensor) -> None:
    if torch.is_grad_enabled() and any(x.requires_grad for x in tensors):
        raise ValueError(f"{op}: the fused kernel is inference-only (no backward); run under torch.no_grad "
                         "or use impl='reference' (or triplane_sample + the decoder, which have backward)")


def will_use_triton(impl: str, *tensors: torch.Tensor, op: str = "march_rays") -> bool:
    """Whether `impl` resolves to Triton for `op` on these tensors (logs an "auto" fallback like the op)."""
    return resolve_impl(impl, op, *tensors) == "triton"
