"""Merging depth maps made elsewhere into a copy of a dataset (`python -m core.dataset_tool add-depth`).

3DGP ("3D generation on ImageNet", ICLR 2023) runs a monocular depth estimator once, offline, over
the dataset; any estimator will do. Its outputs are matched to the dataset's images by relative path
without extension: the image `a/b.png` (or .jpg) takes the first of `a/b_depth.png`, `a/b.png`,
`a/b_depth.npy`, `a/b.npy` found under the depth folder (a leading `<dataset name>/` folder on
either side is ignored). Accepted: PNGs of 8 or 16 bits, 1 or 2 channels (channel 0 is the depth),
and .npy float arrays [H, W], normalised per image to the full 16-bit range. Larger must mean
farther; `disparity=True` reverses estimators that output inverse depth. Each map is written as a
1-channel 16-bit `<image stem>_depth.png` beside its image (core/data/depth.py), resized to the
image's size when it differs.

The source is never modified: the result is a new .zip or folder, written under a temporary name and
renamed into place, so only a complete dataset ever appears under the destination's name. Depth
maps the source already holds are kept for images the depth folder does not cover.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import UserError
from ..fileio import atomic_write
from .dataset import FileSource, is_image_name
from .depth import (
    decode_depth,
    depth_name_for,
    depth_stem,
    encode_depth,
    float_depth_to_uint16,
    is_depth_name,
    resize_depth,
)

DEPTH_INPUTS = ("_depth.png", ".png", "_depth.npy", ".npy")  # tried in this order for each image


@dataclass
class AddDepthReport:
    """What add_depth did: counts, and the names of images left without depth."""

    dest: str
    images: int
    matched: int  # depth maps taken from the depth folder
    kept: int  # depth maps the source already had, for images the folder does not cover
    missing: list[str] = field(default_factory=list)  # images without depth in the result
    unused: list[str] = field(default_factory=list)  # files of the depth folder no image took

    def summary(self, examples: int = 5) -> str:
        lines = [f"wrote {self.dest}: depth for {self.matched + self.kept} of {self.images} images "
                 f"({self.matched} from the depth folder, {self.kept} kept from the source)"]
        if self.missing:
            lines.append(f"warning: {len(self.missing)} image(s) without depth, e.g. "
                         + ", ".join(f"'{m}'" for m in self.missing[:examples]))
        if self.unused:
            lines.append(f"note: {len(self.unused)} file(s) of the depth folder matched no image, e.g. "
                         + ", ".join(f"'{m}'" for m in self.unused[:examples]))
        return "\n".join(lines)


def _index_depth_dir(root: Path) -> dict[str, Path]:
    """Relative posix name -> path of every candidate file under the depth folder."""
    if not root.is_dir():
        raise UserError(f"depth folder not found: {root}")
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and p.name.lower().endswith((".png", ".npy")) and not p.name.startswith(".")}


def _find_depth(image: str, stem: str, table: dict[str, Path]) -> str | None:
    """The depth folder's entry for an image (see the module docstring), or None."""
    base = posixpath.splitext(image)[0]
    bare = base[len(stem) + 1:] if stem and base.startswith(stem + "/") else base
    for b in dict.fromkeys([base, bare, f"{stem}/{bare}"]):
        for suffix in DEPTH_INPUTS:
            if b + suffix in table:
                return b + suffix
    return None


def read_depth_file(path: Path, disparity: bool = False) -> np.ndarray:
    """A depth file (.png 8/16-bit, 1/2 channels, or .npy floats) -> [H, W] uint16, larger = farther."""
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read depth array '{path}': {e}") from None
        if not np.issubdtype(arr.dtype, np.number):
            raise UserError(f"depth array '{path}' holds {arr.dtype}, not numbers")
        try:
            return float_depth_to_uint16(arr, disparity)
        except ValueError as e:
            raise UserError(f"depth array '{path}': {e}") from None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read depth map '{path}': {e}") from None
    d = decode_depth(data, str(path))
    return (np.uint16(65535) - d) if disparity else d


def _image_size(files: FileSource, name: str) -> tuple[int, int]:
    try:
        with files.open(name) as f, Image.open(f) as im:
            return im.size[1], im.size[0]
    except (OSError, SyntaxError, ValueError, zipfile.BadZipFile, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image '{name}' in {files.path}: {e}") from None


def _check_dest(source: Path, dest: Path) -> None:
    src, dst = source.resolve(), dest.resolve()
    if src == dst:
        raise UserError(f"--dest is the source itself ({source}); give a new .zip or folder")
    if source.is_dir() and dst.is_relative_to(src):
        raise UserError(f"--dest {dest} is inside the source folder {source}; put it elsewhere")
    if src.is_relative_to(dst):
        raise UserError(f"--dest {dest} contains the source {source}; give a new .zip or folder")
    if dest.suffix.lower() != ".zip" and dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"--dest {dest} exists and is not an empty folder; give a new folder or a .zip")


_UMASK = os.umask(0)  # read once at import (as core/fileio.py does), while no thread can be creating files
os.umask(_UMASK)


def _write_folder(dest: Path, emit: Callable[[Callable[[str, bytes], None]], None]) -> None:
    """emit(write) writes the files into a temporary folder beside `dest`, then renamed to `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))

    def write(name: str, data: bytes) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    try:
        emit(write)
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp made it 0o700
        if dest.is_dir():
            dest.rmdir()  # checked empty before writing; the rename needs it gone
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_zip(dest: Path, emit: Callable[[Callable[[str, bytes], None]], None]) -> None:
    """emit(write) writes the members of a zip that appears under `dest` only once complete."""

    def write_file(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            emit(zf.writestr)

    atomic_write(dest, write_file)


def add_depth(source: str | os.PathLike, depth_dir: str | os.PathLike, dest: str | os.PathLike,
              disparity: bool = False, progress: Callable | None = None) -> AddDepthReport:
    """Copy the dataset `source` (folder or .zip) to `dest` (a .zip, or else a new folder) with the depth
    maps of `depth_dir` merged in as `<image stem>_depth.png`; see the module docstring.

    Raises UserError, writing nothing, when no image matches a depth map. `progress` wraps the
    iteration over the source's files (e.g. tqdm).
    """
    source, depth_root, dest = Path(source), Path(depth_dir), Path(dest)
    files = FileSource(source)
    _check_dest(source, dest)
    table = _index_depth_dir(depth_root)
    images = [n for n in files.names if is_image_name(n)]
    if not images:
        raise UserError(f"no PNG/JPEG images in {source}")
    found = {im: _find_depth(im, files.stem, table) for im in images}
    matched = {im: f for im, f in found.items() if f is not None}
    if not matched:
        sample = next(iter(table), None)
        raise UserError(f"none of the {len(images)} images of {source} has a depth map in {depth_root} "
                        f"(matched by relative path without extension: '{images[0]}' takes "
                        f"'{posixpath.splitext(images[0])[0]}_depth.png', '.png', '_depth.npy' or '.npy'); "
                        + (f"the folder holds e.g. '{sample}'" if sample else "the folder holds no .png/.npy files"))
    replaced = {posixpath.splitext(im)[0] for im in matched}  # stems whose old depth map is dropped
    existing = {depth_stem(n) for n in files.names if is_depth_name(n)}
    kept = sum(1 for im in images if im not in matched and posixpath.splitext(im)[0] in existing)
    missing = [im for im in images if im not in matched and posixpath.splitext(im)[0] not in existing]

    def emit(write: Callable[[str, bytes], None]) -> None:
        for name in (files.names if progress is None else progress(files.names)):
            if is_depth_name(name) and depth_stem(name) in replaced:
                continue
            write(name, files.read(name))
            if name in matched:
                path = table[matched[name]]
                depth = resize_depth(read_depth_file(path, disparity), _image_size(files, name), f"depth map '{path}'")
                write(depth_name_for(name), encode_depth(depth))

    (_write_zip if dest.suffix.lower() == ".zip" else _write_folder)(dest, emit)
    return AddDepthReport(str(dest), len(images), len(matched), kept, missing, sorted(set(table) - set(matched.values())))


def cmd_add_depth(args) -> int:
    """The `add-depth` subcommand of core.dataset_tool."""
    import sys

    from tqdm import tqdm

    report = add_depth(args.source, args.depth_from, args.dest, disparity=args.disparity,
                       progress=lambda it: tqdm(it, desc="files", unit="file", file=sys.stdout))
    print(report.summary())
    return 0
