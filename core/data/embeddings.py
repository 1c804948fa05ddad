"""Teacher embeddings of a dataset's images for knowledge distillation (3DGP, ICLR 2023): computed
once, offline, and stored beside the dataset; training reads the rows of its real images.

    python -m core.dataset_tool embed --source DATASET --teacher efficientnet_lite0 --dest FILE.npz
    emb = load_embeddings("FILE.npz", dataset)   # refuses a file made for other images
    target = emb.vectors[idx]                    # [B, dim] for dataset items idx (mirrored copies too)

The file is an uncompressed .npz (read with allow_pickle=False) with two entries:

* ``embeddings``: float32 [N, dim], one row per image of the dataset (whole images, unmirrored);
* ``meta``: a JSON string: format and version, ``dim``, ``count``, ``index`` (the image's relative
  path inside the folder or zip, as ImageDataset lists it -> row), ``teacher`` (the name given to
  ``--teacher``), ``provenance`` (teacher, package versions, weights file name and SHA-256),
  ``dataset`` (its path, name, image count and fingerprint) and ``preprocessing``.

The dataset fingerprint is the SHA-1 of the sorted ``relative path\\0size\\n`` lines of its images:
a renamed, added, removed or rewritten (resized) image changes it. The file is written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..errors import UserError
from ..fileio import atomic_write
from .dataset import ImageDataset
from .teacher import embed_images, load_teacher

FORMAT = "epigraf-studio teacher embeddings"
VERSION = 1


def image_sizes(dataset: ImageDataset) -> list[int]:
    """Byte sizes of the dataset's image files, in dataset.images order."""
    files = dataset.files
    if files.is_zip:
        zf = files._zipfile()
        return [zf.getinfo(n).file_size for n in dataset.images]
    return [os.stat(files.path / n).st_size for n in dataset.images]


def dataset_fingerprint(names: list[str], sizes: list[int]) -> str:
    """SHA-1 of the sorted 'relative path\\0size\\n' lines of a dataset's images."""
    h = hashlib.sha1()
    for name, size in sorted(zip(names, sizes)):
        h.update(f"{name}\0{int(size)}\n".encode())
    return h.hexdigest()


def default_embeddings_path(dataset_path: str | os.PathLike) -> Path:
    """Where training looks for a dataset's embeddings by default (kd.embeddings empty): DATASET_embeddings.npz
    beside the dataset, e.g. data/objects.zip -> data/objects_embeddings.npz, data/imgs/ -> data/imgs_embeddings.npz."""
    p = Path(dataset_path)
    stem = p.stem if p.suffix.lower() == ".zip" else p.name
    return p.parent / f"{stem}_embeddings.npz"


def _open(dataset: ImageDataset | str | os.PathLike) -> ImageDataset:
    return dataset if isinstance(dataset, ImageDataset) else ImageDataset(str(dataset))


class _Images(torch.utils.data.Dataset):
    """The dataset's images at their native resolution as uint8 [H, W, 3] (DataLoader workers)."""

    def __init__(self, dataset: ImageDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return self.dataset.num_images

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.dataset.load_image(i).permute(1, 2, 0).contiguous()


def compute_embeddings(source: str | os.PathLike, teacher: str, dest: str | os.PathLike, batch: int = 64,
                       device: str | torch.device = "cpu", workers: int = 0, progress: bool = True) -> dict:
    """Embed every image of the dataset `source` (folder or .zip with dataset.json) with `teacher`
    (a name for `load_teacher`) and write the file `dest` atomically; returns its meta dict."""
    if batch < 1:
        raise UserError(f"--batch must be at least 1, got {batch}")
    if workers < 0:
        raise UserError(f"--workers must be at least 0, got {workers}")
    ds = ImageDataset(str(source))  # native resolution; lists the images as training does
    net = load_teacher(teacher, device)
    loader = torch.utils.data.DataLoader(_Images(ds), batch_size=batch, shuffle=False, num_workers=workers)
    rows = []
    with tqdm(total=ds.num_images, desc="embedding", unit="img", file=sys.stdout, disable=not progress) as bar:
        for images in loader:
            rows.append(embed_images(net, images, batch))
            bar.update(images.shape[0])
    vectors = torch.cat(rows).numpy().astype(np.float32)
    if not np.isfinite(vectors).all():
        raise UserError(f"the teacher gave non-finite features for some images of {source}")
    meta = {
        "format": FORMAT, "version": VERSION, "dim": int(net.dim), "count": int(vectors.shape[0]),
        "index": {name: i for i, name in enumerate(ds.images)},
        "teacher": net.name, "provenance": net.provenance,
        "dataset": {"path": str(Path(ds.path).resolve()), "name": ds.name, "num_images": ds.num_images,
                    "fingerprint": dataset_fingerprint(ds.images, image_sizes(ds))},
        "preprocessing": "whole image, short side bilinearly resized to 224 (no crop), ImageNet mean/std; "
                         "features: global average pool of the last feature map",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

    def write(f):
        np.savez(f, embeddings=vectors, meta=np.array(json.dumps(meta)))

    atomic_write(dest, write)
    return meta


@dataclass
class Embeddings:
    """Teacher embeddings aligned with a dataset: `vectors` float32 [num_images, dim], row i for
    dataset.images[i]; item i of a mirrored dataset uses row i % num_images (the unmirrored image's)."""

    vectors: torch.Tensor
    dim: int
    meta: dict[str, Any]

    def rows(self, items: torch.Tensor | list[int]) -> torch.Tensor:
        """Targets [B, dim] for dataset items (indices as ImageDataset.__getitem__ takes them)."""
        idx = torch.as_tensor(items, dtype=torch.long) % self.vectors.shape[0]
        return self.vectors[idx]


def read_embeddings_file(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """(vectors [N, dim] float32, meta) of an embeddings file; a one-line UserError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"teacher embeddings not found: {path} (make them with python -m core.dataset_tool embed)")
    try:
        with np.load(path, allow_pickle=False) as z:
            vectors, meta = z["embeddings"], json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, io.UnsupportedOperation) as e:
        raise UserError(f"{path} is not a teacher-embeddings file ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a teacher-embeddings file (no '{FORMAT}' header)")
    if meta.get("version") != VERSION:
        raise UserError(f"{path} has embeddings format version {meta.get('version')}; this code reads {VERSION}")
    index = meta.get("index")
    if (vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != meta.get("dim")
            or not isinstance(index, dict) or len(index) != vectors.shape[0]
            or sorted(index.values()) != list(range(vectors.shape[0]))):
        raise UserError(f"{path} is damaged: its array {vectors.dtype} {vectors.shape} does not match its index")
    return vectors, meta


def load_embeddings(path: str | os.PathLike, dataset: ImageDataset | str | os.PathLike) -> Embeddings:
    """The embeddings of `path` in the order of `dataset` (an ImageDataset or its path).

    Refuses, with one line that gives the command to recompute them, a file whose index lacks an
    image of the dataset, lists an image the dataset does not have, or whose dataset fingerprint
    differs (an image rewritten)."""
    vectors, meta = read_embeddings_file(path)
    ds = _open(dataset)
    index = meta["index"]
    teacher = meta.get("teacher", "efficientnet_lite0")
    redo = f"recompute them: python -m core.dataset_tool embed --source {ds.path} --teacher {teacher} --dest {path}"
    missing = [n for n in ds.images if n not in index]
    extra = sorted(set(index) - set(ds.images))
    if missing:
        raise UserError(f"{path} lacks {len(missing)} of the {ds.num_images} images of {ds.path} "
                        f"(e.g. '{missing[0]}'): {redo}")
    if extra:
        raise UserError(f"{path} lists {len(extra)} image(s) that {ds.path} does not have (e.g. '{extra[0]}'): {redo}")
    fingerprint = dataset_fingerprint(ds.images, image_sizes(ds))
    if fingerprint != meta.get("dataset", {}).get("fingerprint"):
        raise UserError(f"{path} was computed for another version of {ds.path} (dataset fingerprint differs: "
                        f"images rewritten): {redo}")
    order = torch.tensor([index[n] for n in ds.images], dtype=torch.long)
    return Embeddings(torch.from_numpy(vectors)[order].contiguous(), int(meta["dim"]), meta)
