"""Front-to-back alpha compositing of samples along rays (the math: `core.kernels.reference.composite`).

Transmittance is exp(-cumsum(sigma * delta)) (exclusive), which is cheaper than the reference's
cumprod(1 - alpha) and has the right gradient where alpha = 1. The interval after the last sample
is 1e10 long when `far_opaque` (the reference's behaviour without a background model: every ray
becomes opaque at the far bound), else 1e-3.
"""

from __future__ import annotations

import torch

from .. import kernels
from ..kernels.reference import FAR_DELTA_OPAQUE, FAR_DELTA_OPEN  # noqa: F401  (re-exported)


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far_opaque: bool,
              stop_transmittance: float = 0.0, impl: str = "reference") -> dict[str, torch.Tensor]:
    """rgb [..., S, C], sigma [..., S] >= 0, t [..., S] ascending ->

    rgb [..., C] (sum of w * c), opacity [..., ] (sum of w), depth [...] (sum of w * t / opacity,
    the far bound where nothing is hit), depth_raw [...] (sum of w * t, the reference's form),
    weights [..., S]. stop_transmittance > 0: early ray termination (inference).
    """
    return kernels.composite(rgb, sigma, t, far_opaque, stop_transmittance, impl=impl)
