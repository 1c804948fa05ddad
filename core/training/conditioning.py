"""Adding class labels to a trained unconditional model, so that it computes what it did.

A class-conditional G feeds the label through its mapping network (z and an embedding of c, each
normalised, concatenated) and D through its projection head (c concatenated before the patch
embedding). Both differ from the unconditional networks only in the first layer that sees c: it
has more input columns. `add_class_conditioning` copies every other weight and rescales the old
columns for the equalised learning rate (a fully connected layer multiplies its weight by
1/sqrt(in_features), which grew). With the new columns at zero (`label_init` 0) the widened
networks give the same outputs as before for every label, and training then learns to use it.

That suits D, whose projection head learns at the full rate. G's label columns sit in the mapping
network, whose learning-rate multiplier of 0.01 would let them grow from zero only by a few per cent
of a fresh layer's size in tens of thousands of steps: the label would hardly reach w. So G's start
at `label_init` times the random values of a freshly built network (train.label_init, default 1):
each class's w then moves as in a network trained with labels from the start, onto another part of
the distribution the model has learned (the renders stay objects of the model, other ones per
class), and training makes each class its own.
"""

from __future__ import annotations

import math

import torch

# name of the first layer that sees the label -> where its label columns go
_WIDENED = {
    "mapping_network.layers.0.weight": "end",  # G: [normalised z, normalised embed(c)]
    "head_mapping.embed.weight": "start",     # D: [c, patch embedding, camera encoding]
}


def add_class_conditioning(old: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], c_dim: int,
                           what: str, label_init: float = 0.0) -> dict[str, torch.Tensor]:
    """State dict of an unconditional network -> that of its class-conditional twin.

    `fresh` is the state dict of a newly built conditional network (shapes, and the initial values
    of layers that only the label feeds, such as G's label embedding); `c_dim` the label size, for
    the check of the new columns; the new columns are `label_init` times fresh's (0: zeros).
    """
    out, unused = {}, set(old)
    for name, target in fresh.items():
        if name not in old:
            if not name.startswith("mapping_network.embed."):
                raise ValueError(f"{what}: '{name}' is new in the class-conditional network but not a label layer")
            out[name] = target.clone()  # the label embedding: its initial values (zero columns mute it)
            continue
        unused.discard(name)
        src = old[name]
        if src.shape == target.shape:
            out[name] = src.clone()
            continue
        side = _WIDENED.get(name)
        added = target.shape[1] - src.shape[1] if src.ndim == 2 and target.ndim == 2 else -1
        if side is None or target.shape[0] != src.shape[0] or added <= 0:
            raise ValueError(f"{what}: '{name}' is {tuple(src.shape)} in the checkpoint but "
                             f"{tuple(target.shape)} in the class-conditional network")
        # G's label embedding is w_dim wide; D's label enters as its c_dim values
        expected = c_dim if side == "start" else fresh["mapping_network.embed.weight"].shape[0]
        if added != expected:
            raise ValueError(f"{what}: '{name}' grew by {added} columns, expected {expected}")
        kept = src * math.sqrt(target.shape[1] / src.shape[1])  # the same effective weight
        new = label_init * (target[:, :added] if side == "start" else target[:, -added:]).to(src.dtype)
        out[name] = torch.cat([new, kept] if side == "start" else [kept, new], dim=1)
    if unused:
        raise ValueError(f"{what}: the checkpoint has weights the conditional network lacks, "
                         f"e.g. '{sorted(unused)[0]}'")
    return out
