"""Depth maps stored beside dataset images, as 3DGP trains with them ("3D generation on ImageNet",
ICLR 2023; snap-research/3dgp).

File convention: the depth of `dir/name.png` (or .jpg) is `dir/name_depth.png` in the same folder or
zip, a greyscale PNG in which LARGER MEANS FARTHER:

* 16-bit: used as is, v in [0, 65535];
* 8-bit: promoted to the 16-bit scale, v16 = 257 * v8 (255 -> 65535);
* 2-channel (grey + alpha, as LeReS writes them), 8- or 16-bit: channel 0; 8-bit RGB(A): channel 0.

Files named `*_depth.png` are never images (`core.data.dataset.is_image_name`). A depth map of another
square size is resized (bilinear, antialiased) to the image resolution when it is read.

The loader maps v to the value D sees as x = v / 65536 * 2 - 1 (about [-1, 1]): 0 is the near end
and 65535 the far end, the order in which the depth adaptor (core/networks/depth_adaptor.py) maps a
rendered depth [near', far] to [-1, 1]. Depth estimated by a network is relative: only the order and
a rough shape matter, the adaptor learns the rest. Exact renders (`dataset_tool render --depth`)
encode v = round((t - near) / (far - near) * 65535) with t the distance along the ray from the camera
centre (the renderer's expected depth) and the background at the far value 65535.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UserError

DEPTH_SUFFIX = "_depth.png"
DEPTH_MAX = 65535
_PNG_SIG = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------------
# Names


def is_depth_name(name: str) -> bool:
    """Whether a file name is a depth map by the naming convention (`*_depth.png`, any case)."""
    return posixpath.basename(str(name).replace("\\", "/")).lower().endswith(DEPTH_SUFFIX)


def depth_name_for(image_name: str) -> str:
    """'a/b/img.jpg' -> 'a/b/img_depth.png': where the depth map of an image lives."""
    return posixpath.splitext(image_name)[0] + DEPTH_SUFFIX


def depth_stem(depth_name: str) -> str:
    """'a/b/img_depth.png' (any case of the suffix) -> 'a/b/img', the stem of the image it belongs to."""
    return depth_name[: -len(DEPTH_SUFFIX)]


def find_depth_files(names: list[str], images: list[str]) -> list[str | None]:
    """For each image, the name of its depth map among `names` (None where it has none)."""
    by_stem = {depth_stem(n): n for n in names if is_depth_name(n)}
    return [by_stem.get(posixpath.splitext(im)[0]) for im in images]


def missing_depth_message(where: str, images: list[str], depth_names: list[str | None]) -> str:
    """One line: how many images lack a depth map, an example, and the command that adds them."""
    missing = [im for im, d in zip(images, depth_names) if d is None]
    return (f"{len(missing)} of {len(images)} images in {where} have no depth map (e.g. '{missing[0]}' has no "
            f"'{depth_name_for(missing[0])}'); add depth maps with: python -m core.dataset_tool add-depth "
            f"--source {where} --from DEPTH_DIR --dest OUT")


# --------------------------------------------------------------------------------------------------
# Decoding and encoding


def _png_chunks(data: bytes):
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_format(data: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's header, or None for another format."""
    if data[:8] != _PNG_SIG or data[12:16] != b"IHDR" or len(data) < 26:
        return None
    return data[24], data[25]


def _decode_grey_alpha16(data: bytes) -> np.ndarray:
    """Channel 0 of a 16-bit grey+alpha PNG, exactly (PIL itself keeps only the high bytes).

    Such a PNG's scanlines have 4 bytes per pixel, as an 8-bit RGBA PNG's do, and PNG filtering
    works on bytes with that pixel stride: relabelling the header as 8-bit RGBA decodes the same
    bytes, whose first two per pixel are the big-endian grey value.
    """
    ihdr = bytearray(next(body for kind, body in _png_chunks(data) if kind == b"IHDR"))
    ihdr[8], ihdr[9] = 8, 6  # bit depth 8, colour type RGBA
    out = _PNG_SIG + _chunk(b"IHDR", bytes(ihdr))
    out += b"".join(_chunk(kind, body) for kind, body in _png_chunks(data) if kind == b"IDAT")
    out += _chunk(b"IEND", b"")
    with Image.open(io.BytesIO(out)) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
    return (rgba[..., 0] << 8) | rgba[..., 1]


def decode_depth(data: bytes, name: str) -> np.ndarray:
    """Depth PNG bytes -> [H, W] uint16 on the 16-bit scale (see the module docstring)."""
    fmt = _png_format(data)
    if fmt is None:
        raise UserError(f"depth map '{name}' is not a PNG file")
    bits, ctype = fmt
    try:
        if bits == 16 and ctype == 4:
            return _decode_grey_alpha16(data)
        if bits == 16 and ctype in (2, 6):
            raise UserError(f"depth map '{name}' is a 16-bit colour PNG; save channel 0 as a 1-channel 16-bit PNG")
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.clip(np.asarray(im).astype(np.int64), 0, DEPTH_MAX).astype(np.uint16)
            if im.mode not in ("L", "LA", "RGB", "RGBA"):
                im = im.convert("L")
            arr = np.asarray(im, dtype=np.uint16)
    except (OSError, SyntaxError, ValueError, StopIteration, Image.DecompressionBombError) as e:
        raise UserError(f"cannot decode depth map '{name}': {e}") from None
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr * 257  # 8-bit -> 16-bit scale: 255 -> 65535


def encode_depth(depth: np.ndarray) -> bytes:
    """[H, W] uint16 -> the bytes of a 1-channel 16-bit PNG."""
    depth = np.asarray(depth)
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise ValueError(f"expected an [H, W] uint16 array, got {depth.dtype} {depth.shape}")
    buf = io.BytesIO()
    Image.fromarray(depth).save(buf, format="PNG")
    return buf.getvalue()


def resize_depth(depth: np.ndarray, size: int | tuple[int, int], name: str = "depth map") -> np.ndarray:
    """[H, W] uint16 -> [size, size] (or [h, w]) uint16, bilinear with antialiasing; the aspect must match."""
    h, w = (size, size) if isinstance(size, int) else size
    if depth.shape == (h, w):
        return depth
    if abs(depth.shape[0] / depth.shape[1] - h / w) > 0.01:
        raise UserError(f"{name} is {depth.shape[1]}x{depth.shape[0]}, but its image is {w}x{h}")
    x = torch.from_numpy(depth.astype(np.float32))[None, None]
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return x[0, 0].round().clamp(0, DEPTH_MAX).numpy().astype(np.uint16)


def depth_to_tensor(depth: np.ndarray, resolution: int | None = None) -> torch.Tensor:
    """[H, W] uint16 -> [1, R, R] float32, v / 65536 * 2 - 1 (in [-1, 1)), resized to R if given."""
    if resolution is not None:
        depth = resize_depth(depth, resolution)
    return torch.from_numpy(depth.astype(np.float32))[None] / 32768.0 - 1.0


def real_rgbd(image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """A batch of dataset items -> D's real input: uint8 images [B, 3, R, R] and depth [B, 1, R, R]
    (as ImageDataset(depth=True) gives them) -> float [B, 4, R, R] in [-1, 1], RGB then depth.

    Patches are then cut from all four channels at once (core.training.patches.extract_patches).
    """
    return torch.cat([image.float() / 127.5 - 1, depth.to(image.device, torch.float32)], dim=1)


# --------------------------------------------------------------------------------------------------
# Conversions to the 16-bit scale


def float_depth_to_uint16(depth: np.ndarray, disparity: bool = False) -> np.ndarray:
    """A float depth map (any estimator's scale) -> [H, W] uint16, normalised per image to the full range.

    Finite values are mapped linearly from [min, max] to [0, 65535]; with `disparity` (inverse depth,
    larger = nearer, as MiDaS-like estimators output) the order is reversed first. Non-finite values
    become the far end. A constant map becomes all zeros (all near).
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim == 3 and 1 in (d.shape[0], d.shape[-1]):
        d = d.reshape(d.shape[1:] if d.shape[0] == 1 else d.shape[:-1])
    if d.ndim != 2:
        raise ValueError(f"a depth array must be [H, W], got shape {d.shape}")
    if disparity:
        d = -d
    ok = np.isfinite(d)
    out = np.full(d.shape, DEPTH_MAX, dtype=np.uint16)
    if ok.any():
        lo, hi = d[ok].min(), d[ok].max()
        unit = (d[ok] - lo) / (hi - lo) if hi > lo else np.zeros(int(ok.sum()))
        out[ok] = np.round(unit * DEPTH_MAX).astype(np.uint16)
    return out


def metric_depth_to_uint16(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Distances along the ray [H, W] (float; inf for the background) -> uint16 with near -> 0 and
    far -> 65535 (clamped: the background and anything beyond far are 65535)."""
    d = np.where(np.isfinite(depth), depth, far)
    unit = np.clip((d - near) / (far - near), 0.0, 1.0)
    return np.round(unit * DEPTH_MAX).astype(np.uint16)


# --------------------------------------------------------------------------------------------------
# Degradation: exact depth -> what a relative monocular estimator would give

DEGRADE_GAMMA = (0.7, 1.4)  # the random monotone warp u -> u ** gamma
DEGRADE_LOW = (0.0, 0.1)  # then u -> low + (high - low) * u: the foreground's nearest and farthest values
DEGRADE_HIGH = (0.8, 0.95)
DEGRADE_BLUR_PX = (0.5, 1.2)  # Gaussian blur sigma in pixels
DEGRADE_NOISE = (0.004, 0.012)  # std of additive Gaussian noise, in units of the full range


def degrade_depth(surface: np.ndarray, coverage: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Turn an exact depth render into a plausible monocular estimate, on the 16-bit scale.

    surface [H, W]: the depth of the visible surface where coverage > 0 (any value elsewhere);
    coverage [H, W] in [0, 1]: the fraction of each pixel the object covers. Steps, with parameters
    drawn from `rng` (seeded by the caller, so the result is deterministic):

    1. normalise the surface depth to [0, 1] over the foreground (coverage > 0): estimators are
       relative, their scale and shift are unknown;
    2. a random monotone warp: u -> low + (high - low) * u ** gamma (DEGRADE_* ranges), so that the
       foreground stays nearer than the background;
    3. composite over the background (1 = far) by coverage, blur with a Gaussian (edges soften as
       an estimator's do), add Gaussian noise on the foreground;
    4. the background (coverage 0) is set back to exactly far (65535).

    Returns ([H, W] uint16, the drawn parameters).
    """
    from scipy.ndimage import gaussian_filter

    fg = coverage > 0
    params = {"gamma": float(rng.uniform(*DEGRADE_GAMMA)), "low": float(rng.uniform(*DEGRADE_LOW)),
              "high": float(rng.uniform(*DEGRADE_HIGH)), "blur_px": float(rng.uniform(*DEGRADE_BLUR_PX)),
              "noise": float(rng.uniform(*DEGRADE_NOISE))}
    u = np.zeros(surface.shape, dtype=np.float64)
    if fg.any():
        s = surface[fg].astype(np.float64)
        lo, hi = s.min(), s.max()
        u[fg] = (s - lo) / (hi - lo) if hi > lo else 0.0
    u = params["low"] + (params["high"] - params["low"]) * u ** params["gamma"]
    out = coverage * u + (1 - coverage) * 1.0
    out = gaussian_filter(out, params["blur_px"], mode="nearest")
    out = out + fg * rng.normal(0.0, params["noise"], size=out.shape)
    out[~fg] = 1.0
    return np.round(np.clip(out, 0.0, 1.0) * DEPTH_MAX).astype(np.uint16), params
