"""A restricted unpickler for official EpiGRAF / EG3D snapshots: data comes back, code never runs.

Official snapshots pickle live modules through `torch_utils.persistence`: each module is rebuilt by
`_reconstruct_persistent_obj(meta)`, which would compile and execute the source text stored in
`meta["module_src"]`. A plain `pickle.load` therefore runs whatever code the file carries. Here every
global the pickle names is looked up in an allow-list of data-only callables instead:

- the persistence reconstructor becomes `ModuleRecord(class_name, state)`: the module's `__dict__`
  (parameters, buffers, sub-modules, attributes); `module_src` is dropped unread;
- classes that would be instantiated (torch.nn containers, the optimiser, omegaconf nodes and
  metadata, dnnlib's EasyDict) become inert `Record`s or plain dicts that only store their state;
- tensor and numpy array rebuilders are the library functions (pure data); the nested legacy
  `torch.save` blob of each storage is read with `torch.load(weights_only=True, map_location="cpu")`,
  so storages tagged 'cuda:0' load on a machine without a GPU;
- anything else (os.system, builtins.eval, subprocess.Popen, importlib, ...) is refused with an
  `UnpicklingError` naming the global, before it is called.
"""

from __future__ import annotations

import collections
import io
import pickle
from typing import Any

import numpy as np
import torch

PERSISTENCE = "torch_utils.persistence"
PLACEHOLDER_TYPES = {"typing.Any"}
# EG3D's plain (non-persistent) classes, pickled by reference with their state: inert records here
EG3D_PLAIN_CLASSES = {"training.triplane.OSGDecoder", "training.volumetric_rendering.renderer.ImportanceRenderer",
                      "training.volumetric_rendering.ray_sampler.RaySampler",
                      "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
                      "training.volumetric_rendering.ray_marcher.MipRayMarcher"}


class Record:
    """An inert stand-in for an instance of a class the pickle names: it only keeps what it is given."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs, self.state, self.items = args, kwargs, None, {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on a dict subclass
        self.items[key] = value

    def append(self, value: Any) -> None:  # APPENDS on a list subclass
        self.items.setdefault("__list__", []).append(value)

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def __repr__(self) -> str:
        return f"<{self.qualname} record>"


def _record_class(qualname: str) -> type:
    """A Record subclass named after the global it stands for (so a converter can tell them apart)."""
    return type(qualname.rsplit(".", 1)[-1], (Record,), {"qualname": qualname})


class ModuleRecord:
    """A module rebuilt by `persistence._reconstruct_persistent_obj`: its class name and `__dict__`."""

    def __init__(self, class_name: str, state: dict, version: Any = None):
        self.class_name, self.state, self.version = class_name, state, version
        self.qualname = f"persistent:{class_name}"

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


class Placeholder:
    """A named constant the pickle refers to (e.g. typing.Any as an omegaconf type annotation)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


class EasyDict(dict):
    """dnnlib's EasyDict as a plain dict (attribute access is not needed here)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _reconstruct_persistent(meta: Any) -> ModuleRecord:
    if not isinstance(meta, dict) or "class_name" not in meta or "state" not in meta:
        raise pickle.UnpicklingError("persistence record without class_name/state: not an official snapshot")
    return ModuleRecord(str(meta["class_name"]), meta["state"], meta.get("version"))


def _load_storage(blob: bytes) -> Any:
    """A nested legacy torch.save stream of one storage, read weights-only onto the CPU."""
    return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")


def _defaultdict(*args: Any) -> dict:
    return {}


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """copyreg._reconstructor for the classes this unpickler itself handed out (protocol 0/1 pickles)."""
    if base is object and isinstance(cls, type) and issubclass(cls, (Record, EasyDict)):
        return cls.__new__(cls)
    raise pickle.UnpicklingError(f"refused copyreg._reconstructor({cls!r}, {base!r})")


_SAFE_BUILTINS = {"dict": dict, "list": list, "tuple": tuple, "set": set, "frozenset": frozenset,
                  "int": int, "float": float, "str": str, "bool": bool, "bytes": bytes, "bytearray": bytearray,
                  "complex": complex, "slice": slice, "object": object}
_TORCH = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
}


def _numpy_global(module: str, name: str) -> Any:
    if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        if name in ("ndarray", "dtype"):
            return getattr(np, name)
        if name in ("_reconstruct", "scalar"):
            return getattr(np._core.multiarray if hasattr(np, "_core") else np.core.multiarray, name)
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose globals come from the allow-list above; see the module doc."""

    def __init__(self, file, *, what: str = "pickle"):
        super().__init__(file)
        self.what = what
        self.records: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        qual = f"{module}.{name}"
        bare = module[4:] if module.startswith("src.") else module  # EpiGRAF keeps its code under src/
        if bare == PERSISTENCE and name == "_reconstruct_persistent_obj":
            return _reconstruct_persistent
        if bare == "dnnlib.util" and name == "EasyDict":
            return EasyDict
        if module == "builtins" and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if (module, name) in _TORCH:
            return _TORCH[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        np_obj = _numpy_global(module, name)
        if np_obj is not None:
            return np_obj
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "collections" and name == "defaultdict":
            return _defaultdict
        if module == "copyreg" and name == "_reconstructor":
            return _copyreg_reconstructor
        if qual in PLACEHOLDER_TYPES:
            return Placeholder(qual)
        if qual in EG3D_PLAIN_CLASSES or (
                module.startswith(("torch.nn.modules.", "torch.optim.", "omegaconf.")) and name[:1].isupper()):
            return self.records.setdefault(qual, _record_class(qual))
        raise pickle.UnpicklingError(f"refused global '{qual}': it is not on the list of data-only "
                                     f"callables this {self.what} may use")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"refused persistent id {str(pid)[:60]!r}: not a plain pickle")


def restricted_load(file, what: str = "pickle") -> Any:
    """Unpickle `file` (a binary file object) with the allow-list; never runs code from it."""
    return RestrictedUnpickler(file, what=what).load()
