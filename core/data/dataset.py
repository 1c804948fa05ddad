"""Image datasets with cameras: a folder or a .zip read in place, with one dataset.json inside.

Two dataset.json forms are read (docs/spec.md, "Dataset formats"):
- EpiGRAF: {"camera_angles": {path: [yaw, pitch, roll]}, "labels": {path: int | [floats]}} (labels
  optional); cameras are look-at cameras from the CameraConfig (radius, fov, look-at point). An
  optional "camera_params": {path: {"fov_deg", "radius", "lookat_yaw", "lookat_pitch", "lookat_radius"}}
  (any of them; `render --fov-range/--lookat-radius` writes it) gives 3DGP cameras: per image a field
  of view and a look-at point in a ball around the centre (core.cameras.params_to_cameras); what a
  record leaves out is the config's.
- EG3D: {"labels": [[path, [16 floats OpenCV cam2world, 9 floats intrinsics]], ...]}, converted to our
  world by cameras.from_eg3d_labels. (StyleGAN's [[path, int], ...] class labels are read too.)
Keys match files after normalising separators and stripping the image extension, a leading
"<zip or folder stem>/" and the folder that holds dataset.json.

Mirroring (x-flip augmentation) flips the image left-right and reflects the camera in the world's
z = 0 plane: cam2world -> S @ cam2world @ diag(-1, 1, 1, 1) with S = diag(1, 1, -1, 1); for look-at
cameras this is yaw -> -yaw (EG3D's "x = 0 plane" is our z = 0 plane after conversion).
"""

from __future__ import annotations

import io
import json
import math
import os
import posixpath
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..cameras import (
    LOOKAT_CENTRE,
    CameraParams,
    Cameras,
    from_angles,
    from_config,
    from_eg3d_labels,
    params_to_cameras,
    to_angles,
)
from ..config import CameraConfig
from ..errors import UserError
from .depth import decode_depth, depth_to_tensor, find_depth_files, is_depth_name, missing_depth_message

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
JSON_NAME = "dataset.json"
HEADER_SCAN_LIMIT = 20000  # image headers checked when a dataset is opened
MAX_RESOLUTION = 8192  # larger images are refused when the dataset is opened (a 100000^2 header is 30 GB decoded)
_MIRROR_WORLD = torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0]))  # reflection in z = 0
_MIRROR_CAM = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))  # camera x axis flipped


# --------------------------------------------------------------------------------------------------
# Mirroring


def mirror_cam2world(c2w: torch.Tensor) -> torch.Tensor:
    """[..., 4, 4] cam2world -> the camera of the left-right flipped image in the z-reflected world."""
    s = _MIRROR_WORLD.to(c2w)
    return s @ c2w @ _MIRROR_CAM.to(c2w)


def mirror_intrinsics(k: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] normalised intrinsics -> those of the flipped image (cx -> 1 - cx)."""
    k = k.clone()
    k[..., 0, 2] = 1 - k[..., 0, 2]
    return k


def mirror_cameras(cams: Cameras) -> Cameras:
    return Cameras(mirror_cam2world(cams.cam2world), mirror_intrinsics(cams.intrinsics),
                   cams.near.clone(), cams.far.clone())


# --------------------------------------------------------------------------------------------------
# Files: a folder or a zip, read in place


def is_image_name(name: str) -> bool:
    """PNG/JPEG files, except hidden ones and depth maps (`*_depth.png`, core/data/depth.py)."""
    base = posixpath.basename(name)
    return (name.lower().endswith(IMAGE_EXTS) and not base.startswith(".") and "__MACOSX/" not in name
            and not is_depth_name(name))


class FileSource:
    """Read-only access to the files of a folder or a .zip by relative posix name.

    The zip is opened lazily and again in every process (DataLoader workers get their own handle).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"dataset not found: {self.path}")
        self.is_zip = self.path.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        if self.is_zip:
            if not zipfile.is_zipfile(self.path):
                raise UserError(f"{self.path} is neither a folder nor a readable .zip file")
            self.names = sorted(n for n in self._zipfile().namelist() if not n.endswith("/"))
        else:
            self.names = sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        self.stem = self.path.stem if self.is_zip else self.path.name

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise UserError(f"cannot open {self.path}: {e}") from None
            self._pid = os.getpid()
        return self._zip

    def open(self, name: str):
        return self._zipfile().open(name) if self.is_zip else open(self.path / name, "rb")

    def read(self, name: str) -> bytes:
        try:
            with self.open(name) as f:
                return f.read()
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise UserError(f"cannot read '{name}' in {self.path}: {e}") from None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": -1}


# --------------------------------------------------------------------------------------------------
# dataset.json: parsing and key matching


def normalize_key(name: str, stem: str = "") -> str:
    """'./ffhq\\00001.png' -> 'ffhq/00001' -> '00001' (for stem 'ffhq')."""
    k = str(name).replace("\\", "/")
    while k.startswith("./"):
        k = k[2:]
    k = k.lstrip("/")
    if k.lower().endswith(IMAGE_EXTS):
        k = posixpath.splitext(k)[0]
    if stem and k.startswith(stem + "/"):
        k = k[len(stem) + 1:]
    return k


@dataclass
class CameraFile:
    """The content of a dataset.json (or a camera file) keyed by normalised names."""

    source: str  # where it came from, for messages
    kind: str  # "angles" (EpiGRAF), "eg3d" or "none"
    cameras: dict[str, list[float]] = field(default_factory=dict)  # key -> [yaw, pitch, roll] or 25 floats
    labels: dict[str, Any] = field(default_factory=dict)  # key -> int or [floats]
    raw_keys: dict[str, str] = field(default_factory=dict)  # normalised -> as written
    class_names: list[str] | None = None  # optional names of the class labels 0, 1, ...
    params: dict[str, dict[str, float]] = field(default_factory=dict)  # key -> 3DGP camera record (camera_params)


CAMERA_PARAM_KEYS = ("radius", "fov_deg", "lookat_yaw", "lookat_pitch", "lookat_radius")
"""The fields of a dataset.json 'camera_params' record: the 3DGP camera beyond camera_angles' origin
(core.cameras.CameraParams; lengths in world units, angles in radians, the field of view in degrees)."""


def _floats(v: Any, n: tuple[int, ...], key: str, what: str, src: str) -> list[float]:
    ok = isinstance(v, (list, tuple)) and len(v) in n and all(isinstance(x, (int, float)) for x in v)
    if not ok or not all(math.isfinite(x) for x in v):
        raise UserError(f"{src}: {what} of '{key}' must be {' or '.join(map(str, n))} finite numbers, got {v!r:.80}")
    return [float(x) for x in v]


def parse_camera_json(text: str | bytes, src: str, stem: str = "") -> CameraFile:
    """Parse either dataset.json form; raises a one-line UserError naming `src` when malformed."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{src} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{src}: expected a JSON object with 'camera_angles' and/or 'labels'")
    out = CameraFile(src, "none")

    def add(table: dict, key: Any, value: Any) -> None:
        if not isinstance(key, str):
            raise UserError(f"{src}: image names must be strings, got {key!r:.80}")
        k = normalize_key(key, stem)
        if k in table:
            raise UserError(f"{src}: '{key}' appears twice (after stripping extension and folder)")
        table[k] = value
        out.raw_keys.setdefault(k, key)

    angles, labels = obj.get("camera_angles"), obj.get("labels")
    if angles is not None:
        if not isinstance(angles, dict):
            raise UserError(f"{src}: 'camera_angles' must map image paths to [yaw, pitch, roll]")
        out.kind = "angles"
        for key, v in angles.items():
            a = _floats(v, (2, 3), key, "camera angles", src)
            if len(a) == 3 and abs(a[2]) > 1e-6:
                raise UserError(f"{src}: roll of '{key}' is {a[2]:g}; only roll 0 is supported")
            add(out.cameras, key, a[:2])
    if isinstance(labels, dict):
        for key, v in labels.items():
            add(out.labels, key, v)
    elif isinstance(labels, list):
        for row in labels:
            if not (isinstance(row, (list, tuple)) and len(row) == 2):
                raise UserError(f"{src}: 'labels' rows must be [path, value], got {row!r:.80}")
            key, v = row
            if isinstance(v, (list, tuple)) and len(v) == 25:
                if angles is not None:
                    raise UserError(f"{src} has both 'camera_angles' and EG3D camera labels; keep one")
                out.kind = "eg3d"
                add(out.cameras, key, _floats(v, (25,), key, "EG3D label", src))
            else:
                add(out.labels, key, v)
    elif labels is not None:
        raise UserError(f"{src}: 'labels' must be a mapping, a list of [path, value] rows or null")
    params = obj.get("camera_params")
    if params is not None:
        if angles is None or not isinstance(params, dict):
            raise UserError(f"{src}: 'camera_params' must map image paths to records and needs 'camera_angles'")
        for key, rec in params.items():
            if not isinstance(rec, dict) or not rec or set(rec) - set(CAMERA_PARAM_KEYS):
                raise UserError(f"{src}: camera_params of '{key}' must be an object with some of "
                                f"{', '.join(CAMERA_PARAM_KEYS)}, got {rec!r:.80}")
            vals = _floats(list(rec.values()), (len(rec),), key, "camera_params", src)
            add(out.params, key, dict(zip(rec, vals)))
    names = obj.get("class_names")
    if names is not None:
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise UserError(f"{src}: 'class_names' must be a list of strings")
        out.class_names = names
    if out.kind == "eg3d" and out.labels:
        raise UserError(f"{src}: mixes EG3D camera labels with other labels")
    return out


def match_keys(image_names: list[str], table: dict[str, Any], stem: str, json_dir: str, src: str,
               what: str = "camera entry") -> list[str]:
    """For each image, the key of its entry in `table`; every entry must be used exactly once."""
    keys, used = [], set()
    for name in image_names:
        cands = [normalize_key(name, stem)]
        if json_dir and name.startswith(json_dir + "/"):
            cands.append(normalize_key(name[len(json_dir) + 1:], stem))
        k = next((c for c in cands if c in table), None)
        if k is None:
            raise UserError(f"image '{name}' has no {what} in {src}")
        keys.append(k)
        used.add(k)
    extra = sorted(set(table) - used)
    if extra:
        raise UserError(f"{src} has {len(extra)} {what}(s) without an image, e.g. '{extra[0]}'")
    return keys


def labels_to_tensor(values: list[Any], src: str) -> torch.Tensor:
    """Class ints -> one-hot [N, max+1]; float vectors -> [N, D]; raises on a mix or ragged lengths."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if min(values) < 0:
            raise UserError(f"{src}: class labels must be >= 0")
        return F.one_hot(torch.tensor(values), max(values) + 1).float()
    if all(isinstance(v, (list, tuple)) for v in values) and len({len(v) for v in values}) == 1:
        try:
            return torch.tensor(values, dtype=torch.float32).reshape(len(values), -1)
        except (TypeError, ValueError):
            pass
    raise UserError(f"{src}: labels must be all ints (classes) or all float lists of one length")


def cameras_from_file(cf: CameraFile, keys: list[str], cfg: CameraConfig) -> tuple[Cameras, torch.Tensor]:
    """Cameras [N] and (yaw, pitch) [N, 2] for the given keys."""
    n = len(keys)
    if cf.kind == "angles":
        a = torch.tensor([cf.cameras[k] for k in keys], dtype=torch.float64).reshape(n, 2)
        if n > 1 and bool((a[:, 0].abs() < 1e-12).all()):
            raise UserError(f"{cf.source}: all yaw angles are zero: the camera file is almost surely broken")
        if cf.params:  # 3DGP cameras: a field of view and a look-at offset per image
            extra = sorted(set(cf.params) - set(keys))
            if extra:
                raise UserError(f"{cf.source} has camera_params without an image, e.g. '{extra[0]}'")
            defaults = dict(zip(CAMERA_PARAM_KEYS, (cfg.radius, cfg.fov_deg, *LOOKAT_CENTRE)))
            rest = torch.tensor([[cf.params.get(k, {}).get(f, defaults[f]) for f in CAMERA_PARAM_KEYS] for k in keys],
                                dtype=torch.float64).reshape(n, len(CAMERA_PARAM_KEYS))
            cams = params_to_cameras(CameraParams(a[:, 0], a[:, 1], *rest.unbind(dim=1)), cfg)
            return cams, a.float()
        cams = from_angles(a[:, 0], a[:, 1], cfg.radius, cfg.fov_deg, cfg.look_at, cfg=cfg)
        return cams, a.float()
    if cf.kind == "eg3d":
        cams = from_eg3d_labels(torch.tensor([cf.cameras[k] for k in keys], dtype=torch.float32),
                                our_radius=cfg.radius)
        return cams, to_angles(cams, cfg.look_at)[:, :2].float()
    cams = from_config(cfg)
    cams = Cameras(*(t.expand(n, *t.shape[1:]).clone() for t in (cams.cam2world, cams.intrinsics, cams.near, cams.far)))
    return cams, torch.tensor([[cfg.yaw_mean, cfg.pitch_mean]], dtype=torch.float32).expand(n, 2).clone()


# --------------------------------------------------------------------------------------------------
# Images


def decode_image(data: bytes, name: str) -> np.ndarray:
    """PNG/JPEG bytes -> [H, W, 3] uint8 (transparent images are composited on white)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im2 = Image.alpha_composite(bg, rgba).convert("RGB")
            else:
                im2 = im.convert("RGB")
            return np.asarray(im2, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot decode image '{name}': {e}") from None


def resize_uint8(img: torch.Tensor, res: int) -> torch.Tensor:
    """[3, H, W] uint8 -> [3, res, res] uint8 with antialiased bilinear resampling."""
    if img.shape[-1] == res and img.shape[-2] == res:
        return img
    x = F.interpolate(img[None].float(), size=(res, res), mode="bilinear", align_corners=False, antialias=True)
    return x[0].round().clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------------------
# The dataset


class ImageDataset(torch.utils.data.Dataset):
    """Square images with cameras (and optional class labels); see the module docstring.

    ds[i] -> dict(image uint8 [3, R, R], cam2world float32 [4, 4], intrinsics float32 [3, 3],
    angles float32 [2] (yaw, pitch), label float32 [label_dim], index int64: the item's own index, or
    that of the image used in its place when it could not be read). Indices >= N are the mirrored copies.
    A dataset.json without cameras gives has_cameras False and the config's mean camera everywhere.
    has_depth: every image has a depth map `<stem>_depth.png` beside it (core/data/depth.py). With
    depth=True items also hold depth float32 [1, R, R] in [-1, 1) (v / 65536 * 2 - 1, larger =
    farther), mirrored with the image; core.data.depth.real_rgbd joins a batch into RGB-D.
    """

    def __init__(self, path: str, resolution: int | None = None, mirror: bool = False,
                 camera_cfg: CameraConfig | None = None, depth: bool = False):
        self.files = FileSource(path)
        self.path = str(path)
        self.name = self.files.stem
        self.mirror = bool(mirror)
        cfg = camera_cfg or CameraConfig()
        where = f"{self.path}"
        jsons = [n for n in self.files.names if posixpath.basename(n) == JSON_NAME and "__MACOSX/" not in n]
        if not jsons:
            raise UserError(f"no {JSON_NAME} in {where} (it must hold the camera angles; see docs)")
        if len(jsons) > 1:
            raise UserError(f"{len(jsons)} {JSON_NAME} files in {where} ({', '.join(jsons[:3])}); keep exactly one")
        src = f"{where}:{jsons[0]}" if self.files.is_zip else str(self.files.path / jsons[0])
        cf = parse_camera_json(self.files.read(jsons[0]), src, self.name)
        self.images = [n for n in self.files.names if is_image_name(n)]
        self._unreadable: set[int] = set()  # images skipped because they could not be read
        if not self.images:
            raise UserError(f"no PNG/JPEG images in {where}")
        self._depth_names = find_depth_files(self.files.names, self.images)
        self.has_depth = all(d is not None for d in self._depth_names)
        self.depth = bool(depth)
        if self.depth and not self.has_depth:
            raise UserError(missing_depth_message(self.path, self.images, self._depth_names))
        json_dir = posixpath.dirname(jsons[0])
        self.has_cameras = cf.kind != "none"
        if self.has_cameras:
            keys = match_keys(self.images, cf.cameras, self.name, json_dir, src)
        else:
            keys = [normalize_key(n, self.name) for n in self.images]
        cams, self._angles = cameras_from_file(cf, keys, cfg)
        self._c2w = cams.cam2world.float()  # [N, 4, 4]
        self._intr = cams.intrinsics.float()  # [N, 3, 3]
        if cf.labels:
            lkeys = match_keys(self.images, cf.labels, self.name, json_dir, src, what="label")
            self._labels = labels_to_tensor([cf.labels[k] for k in lkeys], src)  # [N, D]
        else:
            self._labels = torch.zeros(len(self.images), 0)
        self.label_dim = int(self._labels.shape[1])
        self.class_names = cf.class_names  # None, or one name per class label
        if self.class_names is not None and len(self.class_names) != self.label_dim:
            raise UserError(f"{src}: {len(self.class_names)} class_names for {self.label_dim} label values")
        self.native_resolution = self._check_sizes()
        self.resolution = int(resolution or self.native_resolution)
        if self.resolution < 1:
            raise UserError(f"resolution must be positive, got {resolution}")

    def _check_sizes(self) -> int:
        """Read image headers (not the pixels): all must be square and of one size.

        Every header is read for up to HEADER_SCAN_LIMIT images, else an evenly spread subset of that
        many; load_image checks each image's size again when it is read.
        """
        size0 = None
        names = self.images
        if len(names) > HEADER_SCAN_LIMIT:
            names = [names[i] for i in np.linspace(0, len(names) - 1, HEADER_SCAN_LIMIT).round().astype(int)]
        for name in names:
            try:
                with self.files.open(name) as f, Image.open(f) as im:
                    size = im.size
            except Image.DecompressionBombError:
                raise UserError(f"image '{name}' in {self.path} declares more pixels than PIL will decode, larger "
                                f"than {MAX_RESOLUTION}^2: resize the dataset (python -m core.dataset_tool convert "
                                f"--res R)") from None
            except (OSError, SyntaxError, ValueError, zipfile.BadZipFile) as e:
                raise UserError(f"cannot read image '{name}' in {self.path}: {e}") from None
            if size[0] != size[1]:
                raise UserError(f"image '{name}' in {self.path} is {size[0]}x{size[1]}; images must be square "
                                "(python -m core.dataset_tool convert crops them)")
            if size[0] > MAX_RESOLUTION:
                raise UserError(f"image '{name}' in {self.path} is {size[0]}x{size[1]}, larger than {MAX_RESOLUTION}^2: "
                                f"resize the dataset (python -m core.dataset_tool convert --res R)")
            if size0 is None:
                size0 = (name, size)
            elif size != size0[1]:
                raise UserError(f"mixed resolutions in {self.path}: '{name}' is {size[0]}x{size[1]} but "
                                f"'{size0[0]}' is {size0[1][0]}x{size0[1][1]}")
        return size0[1][0]

    @property
    def num_images(self) -> int:
        return len(self.images)

    def __len__(self) -> int:
        return self.num_images * (2 if self.mirror else 1)

    def load_image(self, idx: int) -> torch.Tensor:
        """[3, R, R] uint8 of the un-mirrored image idx < N, at the dataset's output resolution."""
        name = self.images[idx]
        arr = decode_image(self.files.read(name), f"{name}' in '{self.path}")
        if arr.shape[0] != self.native_resolution or arr.shape[1] != self.native_resolution:
            raise UserError(f"image '{name}' in {self.path} is {arr.shape[1]}x{arr.shape[0]}, "
                            f"expected {self.native_resolution}x{self.native_resolution}")
        return resize_uint8(torch.from_numpy(arr).permute(2, 0, 1), self.resolution)

    def load_depth(self, idx: int) -> torch.Tensor:
        """[1, R, R] float32 in [-1, 1): the depth map of the un-mirrored image idx < N (see the class doc)."""
        name = self._depth_names[idx]
        if name is None:
            raise UserError(f"image '{self.images[idx]}' in {self.path} has no depth map")
        where = f"{name}' in '{self.path}"
        return depth_to_tensor(decode_depth(self.files.read(name), where), self.resolution)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = self.num_images
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        idx, flip = i % n, i >= n
        for _ in range(n):  # an image that cannot be read (corrupt, resized) is skipped, said once
            try:
                img = self.load_image(idx)
                depth = self.load_depth(idx) if self.depth else None
                break
            except UserError as e:
                if idx not in self._unreadable:
                    self._unreadable.add(idx)
                    print(f"warning: {e}; using the next image instead", file=sys.stderr, flush=True)
                idx = (idx + 1) % n
        else:
            raise UserError(f"no image of {self.path} can be read")
        c2w, k, ang = self._c2w[idx], self._intr[idx], self._angles[idx]
        if flip:
            img = img.flip(-1)
            depth = depth.flip(-1) if depth is not None else None
            c2w, k = mirror_cam2world(c2w), mirror_intrinsics(k)
            ang = torch.stack([-ang[0], ang[1]])
        item = {"image": img.contiguous(), "cam2world": c2w.clone(), "intrinsics": k.clone(),
                "angles": ang.clone(), "label": self._labels[idx].clone(),
                "index": torch.tensor(idx + (n if flip else 0))}
        if depth is not None:
            item["depth"] = depth.contiguous()
        return item

    def get_label(self, i: int) -> torch.Tensor:
        """The label [label_dim] of item i (as __getitem__ gives it), without decoding the image."""
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._labels[(i % len(self)) % self.num_images].clone()

    def missing_depth_message(self) -> str:
        """One line on the images without a depth map and the command that adds them ('' when none lacks one)."""
        return "" if self.has_depth else missing_depth_message(self.path, self.images, self._depth_names)

    def camera_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(cam2world [len(ds), 4, 4], intrinsics [len(ds), 3, 3]) of every item, the mirrored copies after the
        originals (the cameras of the items, e.g. the camera prior of train.camera_source 'dataset')."""
        c2w, k = self._c2w, self._intr
        if self.mirror:
            c2w, k = torch.cat([c2w, mirror_cam2world(c2w)]), torch.cat([k, mirror_intrinsics(k)])
        return c2w.clone(), k.clone()

    def camera_table(self) -> torch.Tensor:
        """[len(ds), 2] (yaw, pitch) float32, the mirrored copies (yaw negated) after the originals."""
        a = self._angles
        if self.mirror:
            a = torch.cat([a, torch.stack([-a[:, 0], a[:, 1]], dim=-1)])
        return a.clone()

    def __repr__(self) -> str:
        return (f"ImageDataset('{self.path}', {self.num_images} images{' (+mirrored)' if self.mirror else ''}, "
                f"{self.native_resolution}->{self.resolution}px, label_dim {self.label_dim}, "
                f"cameras {'yes' if self.has_cameras else 'no'}{', depth' if self.depth else ''})")
