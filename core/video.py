"""Writing frames to mp4 with imageio-ffmpeg (its bundled ffmpeg binary: nothing to install)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import UserError


def write_mp4(frames: Iterable[np.ndarray], path: str | Path, fps: int = 30) -> int:
    """Encode [H, W, 3] uint8 frames (even H and W for yuv420p) to an H.264 mp4; returns the frame count."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UserError("video export needs the 'imageio-ffmpeg' package: pip install imageio-ffmpeg") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    count = 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264",
                                                     pix_fmt_out="yuv420p", quality=8, macro_block_size=2)
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count
