"""The Triton implementations of the render ops, one module each (`core.kernels.ops` dispatches here).

Importing this imports triton: it is reached only through `core.kernels.ops` when a call is
dispatched to Triton (CUDA tensors, or TRITON_INTERPRET=1 set before Python started).

  triplane_sample (forward + backward): triton_sample.py
  composite (forward + backward): triton_composite.py
  query_points, march_rays (inference): triton_march.py
  shared block sizes, argument preparation and device helpers: triton_common.py
"""

from __future__ import annotations

from .triton_composite import composite
from .triton_march import march_rays, query_points
from .triton_sample import triplane_sample

__all__ = ["triplane_sample", "composite", "query_points", "march_rays"]
