"""omegaconf objects from an official snapshot (inert records) -> plain dicts, interpolations resolved.

EpiGRAF pickles its OmegaConf config unresolved: `model.generator.dataset` is the string
"${dataset}", `dataset.name` is "food_${dataset.resolution}", and so on. The records that
`core.official.unpickle` returns for DictConfig / ListConfig / value nodes are turned into plain
dicts, lists and values here, and `resolve` follows `${a.b.c}` references (absolute, or relative
with leading dots) the way OmegaConf does for the plain-reference case. Custom resolvers
(`${oc.env:...}`, `${eval:...}`) are left as strings: nothing is evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from .unpickle import Record

_REF = re.compile(r"\$\{([^${}:]+)\}")
MISSING = "???"


def _kind(obj: Any) -> str:
    return obj.qualname.rsplit(".", 1)[-1] if isinstance(obj, Record) else ""


def root_of(node: Any) -> Any:
    """The top of a DictConfig record's parent chain."""
    seen = 0
    while isinstance(node, Record) and isinstance(node.state, dict) and node.state.get("_parent") is not None:
        node, seen = node.state["_parent"], seen + 1
        if seen > 64:
            raise ValueError("config parent chain too deep")
    return node


def to_plain(node: Any) -> Any:
    """A DictConfig/ListConfig/value-node record (or plain data) as plain dicts, lists and values."""
    kind = _kind(node)
    if kind in ("DictConfig", "ListConfig"):
        content = node.state.get("_content") if isinstance(node.state, dict) else None
        if isinstance(content, dict):
            return {str(k): to_plain(v) for k, v in content.items()}
        if isinstance(content, list):
            return [to_plain(v) for v in content]
        return content  # None, '???' or an interpolation string for the whole container
    if kind.endswith("Node"):
        return to_plain(node.state.get("_val") if isinstance(node.state, dict) else None)
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [to_plain(v) for v in node]
    return node


def _lookup(root: dict, path: str, here: list[str]) -> Any:
    if path.startswith("."):
        ups = len(path) - len(path.lstrip("."))
        keys = here[: len(here) - ups + 1] if ups > 1 else list(here)
        keys += [k for k in path.lstrip(".").split(".") if k]
    else:
        keys = path.split(".")
    node: Any = root
    for k in keys:
        if isinstance(node, dict) and k in node:
            node = node[k]
        elif isinstance(node, list) and k.isdigit() and int(k) < len(node):
            node = node[int(k)]
        else:
            raise KeyError(path)
    return node, keys


def resolve(root: dict, value: Any, here: list[str] | None = None, depth: int = 0) -> Any:
    """`value` with ${...} references into `root` replaced (recursively; containers too).

    here: the key path of the container holding `value` (for relative references)."""
    if depth > 32:
        raise ValueError("interpolation nested too deeply (a cycle?)")
    here = here or []
    if isinstance(value, dict):
        return {k: resolve(root, v, here + [k], depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(root, v, here, depth + 1) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole:
        target, keys = _lookup(root, whole.group(1), here)
        return resolve(root, target, keys[:-1], depth + 1)

    def sub(m: re.Match) -> str:
        target, keys = _lookup(root, m.group(1), here)
        return str(resolve(root, target, keys[:-1], depth + 1))

    return _REF.sub(sub, value)


def get(root: dict, path: str, default: Any = MISSING) -> Any:
    """The resolved value at 'a.b.c' of a plain config tree; `default` where a key is absent."""
    try:
        value, keys = _lookup(root, path, [])
    except KeyError:
        if default is MISSING:
            raise
        return default
    return resolve(root, value, keys[:-1])
