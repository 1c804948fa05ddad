"""Render ops with a pure-PyTorch reference and fused Triton kernels behind one dispatching function each.

| op | what | reference backward | Triton forward | Triton backward |
|---|---|---|---|---|
| `triplane_sample` | bilinear lookup of the xy/xz/yz planes, mean | planes, points | yes | planes (atomics), points |
| `composite` | front-to-back compositing (+ early termination) | rgb, sigma, t | yes | rgb, sigma (t constant) |
| `query_points` | sample + decoder MLP 32->64->4 + softplus (meshes) | everything | yes | none (inference) |
| `march_rays` | per ray: points, query, composite in one pass (viewer) | everything | yes | none (inference) |

`march_rays` also has a fused CPU loop (`numba_march.py`, impl "numba", inference only): "auto"
picks it for CPU tensors; the empty-space-skipping path marches with it on a CPU.

No op has a double backward in the Triton path (R1 is taken on D, not G). `composite` with
`stop_transmittance > 0` is inference-only in both paths.

Every op is called as `op(..., impl="auto"|"reference"|"triton"|"numba")` (see `ops.py`).
- "reference": the PyTorch code in `reference.py`, the renderer's own math (moved here, one copy)
  and the ground truth of the tests.
- "triton": `triton_ops.py` and the modules it gathers (CUDA, or the interpreter under TRITON_INTERPRET=1); anywhere else it
  raises `KernelUnavailable`.
- "auto": Triton for CUDA tensors once the op's kernel has passed a tiny check against the
  reference on that device (`ops.verify_triton`, once per op and device), else the reference,
  said once in the log.

Planes may be fp32, fp16 or bf16 (and fp64 on the reference); the kernels accumulate in fp32.
Nothing in this package imports Triton until a call is dispatched to it.

The renderer picks the implementation from `cfg.render.kernel_impl`:
- Training (autograd recording): `triplane_sample` + the decoder module + `composite`.
- Inference renders (viewer, videos) with Triton: `march_rays`, coarse then coarse + fine. The
  coarse samples are evaluated twice, but no per-sample tensor is materialised.
- `G.query` without autograd (meshes): `query_points`.
"""

from .ops import (
                  IMPLS,
                  KernelUnavailable,
                  composite,
                  march_rays,
                  preload_triton,
                  query_points,
                  resolve_impl,
                  triplane_sample,
                  triton_installed,
                  will_use_triton,
)
from .reference import channels_last, fold_first_layer

__all__ = ["IMPLS", "KernelUnavailable", "channels_last", "composite", "fold_first_layer", "march_rays", "preload_triton", "query_points", "resolve_impl",
           "triplane_sample", "triton_installed", "will_use_triton"]
