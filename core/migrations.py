"""Checkpoint format migrations: an older checkpoint, read, becomes the current format in memory.

Version 1 -> 2. Version 1 models were built with three differences from the EpiGRAF reference,
which version 2 removed from the model itself:
  - the 2x-up modulated conv (`conv0` of each synthesis block) flipped its 3x3 kernel before the
    transposed convolution; the reference uses the weight as stored. Flipping the stored weights
    (and their Adam moments) over both spatial axes gives the same function exactly;
  - no activation clamp: the migrated config sets `generator.conv_clamp` to 0 (off);
  - the importance-sampling epsilon was 1e-5: the migrated config sets `render.pdf_eps` to 1e-5.
So a version-1 checkpoint renders, and resumes training, exactly as before. The file on disk is
never rewritten.
"""

from __future__ import annotations

import re
from typing import Any

import torch

CONV0_WEIGHT = re.compile(r"^synthesis\.blocks\.\d+\.conv0\.weight$")


def flip_conv0(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A generator state dict with every conv0 kernel flipped over its two spatial axes."""
    return {k: (v.flip([2, 3]) if CONV0_WEIGHT.match(k) else v) for k, v in state.items()}


def _flip_optimiser(opt: dict[str, Any], param_names: list[str]) -> dict[str, Any]:
    """An Adam state dict (params indexed in `param_names` order) with conv0 moments flipped."""
    state = {}
    for idx, s in opt.get("state", {}).items():
        name = param_names[idx] if isinstance(idx, int) and idx < len(param_names) else ""
        state[idx] = {k: (v.flip([2, 3]) if CONV0_WEIGHT.match(name) and torch.is_tensor(v) and v.ndim == 4 else v)
                      for k, v in s.items()}
    return {**opt, "state": state}


def v1_to_v2(data: dict[str, Any], param_names) -> dict[str, Any]:
    """Migrate a version-1 checkpoint dict (see the module doc). param_names(config) -> G's
    parameter names in `G.parameters()` order (needed only when optimiser moments are present)."""
    out = dict(data)
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data["config"].items()}
    cfg["generator"] = {**cfg.get("generator", {}), "conv_clamp": 0.0}
    cfg["render"] = {**cfg.get("render", {}), "pdf_eps": 1e-5}
    out["config"] = cfg
    for key in ("G_ema", "G"):
        if isinstance(out.get(key), dict):
            out[key] = flip_conv0(out[key])
    if isinstance(out.get("opt_G"), dict):
        out["opt_G"] = _flip_optimiser(out["opt_G"], param_names(cfg))
    out["version"] = 2
    out["migrated_from"] = 1
    return out
