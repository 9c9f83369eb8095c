"""Atomic file writes and image reading, so a killed run never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import InputError, SinkError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


def check_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and fail early with a clear message when it cannot be written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"cannot create output folder {path}: {e.strerror}", "choose a writable path") from e
    if not os.access(path, os.W_OK):
        raise SinkError(f"output folder {path} is not writable", "choose a writable path")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success.

    The suffix is kept so writers that pick a format from the extension (OpenCV, torch) still work.
    """
    path = Path(path)
    check_writable_dir(path.parent if str(path.parent) else Path("."))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_image(path: str | os.PathLike, image_bgr: np.ndarray, quality: int = 95) -> Path:
    """Encode in memory, then write atomically (PNG/JPEG/... chosen by the extension)."""
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, image_bgr, params)
    if not ok:
        raise SinkError(f"cannot encode an image as {ext!r} for {path}", "use .png or .jpg")
    return atomic_write_bytes(path, buf.tobytes())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any image as 3-channel BGR uint8 (greyscale, alpha, 16-bit and CMYK JPEG converted)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"cannot read image {path}: not a readable image file", "check the file or skip it")
    return to_bgr8(img)


def to_bgr8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img)
