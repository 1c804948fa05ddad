"""Colour maps as 256-entry lookup tables, shared by the GL display shader and PNG export.

The shader (shaders/display.frag) only looks values up in the table uploaded from here, and the
export applies the same table on the CPU, so a saved depth map shows what the window shows.
The tables are polynomial fits (turbo: Google's published fit; viridis/inferno: the widely used
6th-order fits of matplotlib's maps), good to about 1/255.
"""

from __future__ import annotations

import numpy as np

_TURBO_R = (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943)
_TURBO_G = (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604)
_TURBO_B = (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973)

_VIRIDIS = np.array([
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
])
_INFERNO = np.array([
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
])


def _poly(coeffs, x: np.ndarray) -> np.ndarray:
    return sum(c * x**i for i, c in enumerate(coeffs))


def lut(name: str) -> np.ndarray:
    """[256, 3] uint8 table for 'turbo', 'viridis', 'inferno' or 'grey'."""
    x = np.linspace(0.0, 1.0, 256)
    if name == "grey":
        rgb = np.stack([x, x, x], axis=-1)
    elif name == "turbo":
        rgb = np.stack([_poly(_TURBO_R, x), _poly(_TURBO_G, x), _poly(_TURBO_B, x)], axis=-1)
    elif name in ("viridis", "inferno"):
        table = _VIRIDIS if name == "viridis" else _INFERNO
        rgb = np.stack([_poly(table[:, k], x) for k in range(3)], axis=-1)
    else:
        raise ValueError(f"unknown colour map '{name}' (turbo, viridis, inferno, grey)")
    return (np.clip(rgb, 0.0, 1.0) * 255).round().astype(np.uint8)


def apply(values: np.ndarray, lo: float, hi: float, name: str, reverse: bool = False) -> np.ndarray:
    """[H, W] floats -> [H, W, 3] uint8: (v - lo) / (hi - lo) clamped to [0, 1], looked up in the table.

    The index is round(u * 255), the same nearest-entry rule the shader's texel fetch uses.
    """
    u = np.clip((values.astype(np.float64) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    if reverse:
        u = 1.0 - u
    return lut(name)[np.round(u * 255).astype(np.int64)]
