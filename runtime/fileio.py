"""Atomic file writes and image reading, so a killed run never leaves a half-written file; where data lives."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import InputError, SinkError

DATA_ENV = "ARTCAM_DATA"
_BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_root(*parts: str) -> Path:
    """Where commands look for data (paintings, photos, videos, CIFAR-10) when no ``--data`` is given:
    ``$ARTCAM_DATA``, else ``../shared/data`` beside the checkout. ``parts`` are joined onto it."""
    env = os.environ.get(DATA_ENV, "").strip()
    return (Path(env).expanduser() if env else _BESIDE_CHECKOUT).joinpath(*parts)


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


PARTIAL_PREFIX = ".artcam-"  # temporary files: .artcam-<pid>@<host>-<stem>.<random>.partial<suffix>
_PARTIAL_RE = re.compile(r"^\.artcam-(\d+)@([A-Za-z0-9]*)-.*\.partial(\.[^.]*)?$")
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40]
_swept: set[str] = set()
_written_in: set[Path] = set()  # folders this process made temporary files in (see remove_own_partials)


def partial_prefix(stem: str) -> str:
    """The start of this process's temporary file names: the pid (and host, for shared file systems)
    says whose it is, so :func:`sweep_stale_partials` removes only those whose process is gone."""
    return f"{PARTIAL_PREFIX}{os.getpid()}@{_HOST}-{stem}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _orphans(folder: Path, pattern: re.Pattern) -> list[str]:
    """Names in ``folder`` matching ``pattern`` (groups: pid, host) whose process on this host is gone;
    another machine's entries are not ours to judge."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in names:
        m = pattern.match(name)
        if m and m.group(2) == _HOST and not _pid_alive(int(m.group(1))):
            out.append(name)
    return out


def sweep_stale_partials(folder: str | os.PathLike, *, quiet: bool = False) -> list[Path]:
    """Remove artcam temporary files in ``folder`` whose writing process is gone (a run killed with
    SIGKILL or a power cut); say so in one line. Each folder is looked at once per process."""
    folder = Path(folder)
    key = str(folder.resolve()) if folder.exists() else str(folder)
    if key in _swept:
        return []
    _swept.add(key)
    removed = []
    for name in _orphans(folder, _PARTIAL_RE):
        try:
            (folder / name).unlink()
            removed.append(folder / name)
        except OSError:
            continue
    if removed and not quiet:
        shown = ", ".join(p.name for p in removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
        print(f"artcam: removed {len(removed)} stale partial file(s) left in {folder} by an interrupted run: {shown}",
              file=sys.stderr)
    return removed


def probe_writable(folder: str | os.PathLike) -> Path:
    """``check_writable_dir``, then really create and remove a file there: permission bits say yes
    on read-only mounts and pseudo file systems (``/proc``, ``/sys``), so ask the file system itself.
    Stale partial files from killed runs are removed on the way."""
    folder = check_writable_dir(Path(folder))
    sweep_stale_partials(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=partial_prefix("probe"), suffix=".partial", dir=folder)
    except OSError as e:
        raise SinkError(f"cannot write in {folder}: {e.strerror or e}", "choose a writable path") from e
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return folder


def _sink_error(what: str, path: Path, e: OSError) -> SinkError:
    why = e.strerror or str(e)
    return SinkError(f"cannot {what} {path}: {why}", "choose a writable path (a normal folder with free space)")


_WORK_RE = re.compile(r"^[a-z0-9]+-(\d+)@([A-Za-z0-9]*)-")


def work_root() -> Path:
    """The one folder under the system temp directory where artcam keeps scratch folders."""
    return Path(tempfile.gettempdir()) / "artcam"


def sweep_stale_work_dirs(root: str | os.PathLike | None = None, *, quiet: bool = False) -> list[Path]:
    """Remove scratch folders under :func:`work_root` whose process is gone (killed runs); one line if any."""
    import shutil

    root = Path(root) if root is not None else work_root()
    removed = []
    for name in _orphans(root, _WORK_RE):
        shutil.rmtree(root / name, ignore_errors=True)
        removed.append(root / name)
    if removed and not quiet:
        print(f"artcam: removed {len(removed)} scratch folder(s) left in {root} by interrupted runs", file=sys.stderr)
    return removed


@contextlib.contextmanager
def work_dir(kind: str) -> Iterator[Path]:
    """A scratch folder ``<tmp>/artcam/<kind>-<pid>@<host>-XXXX``, removed on exit; while it is open, Python's
    own temporary files (e.g. ONNX Runtime's quantisation folders) go inside it too, so a killed run leaves
    one folder that the next run's sweep removes, not litter across the temp directory."""
    import shutil

    root = work_root()
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale_work_dirs(root)
    path = Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}@{_HOST}-", dir=root))
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success.

    The temporary name is ``.artcam-<pid>@<host>-<stem>.<random>.partial<suffix>``: hidden, recognisable, and
    owned by this process, so a later run removes it if this one is killed before it can clean up
    (:func:`sweep_stale_partials`). On any exception, Ctrl-C included, the temporary file is removed
    and ``path`` keeps its previous content (or stays absent). The suffix is kept so writers that pick a
    format from the extension (OpenCV, torch) still work.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    check_writable_dir(parent)
    sweep_stale_partials(parent)
    _written_in.add(parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=partial_prefix(path.stem),
                                   suffix=".partial" + path.suffix, dir=parent)
    except OSError as e:
        raise _sink_error("write", path, e) from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        try:
            os.replace(tmp_path, path)
        except OSError as e:
            raise _sink_error("write", path, e) from e
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def remove_own_partials() -> list[Path]:
    """Remove this process's temporary files in every folder it wrote to; for the interrupt handler.

    ``atomic_path`` removes its file on any exception, but a Ctrl-C can land in the few bytecodes
    between ``mkstemp`` creating the file and the ``try`` that guards it; this closes that window.
    Only names carrying this process's pid and host are touched."""
    removed = []
    me = (str(os.getpid()), _HOST)
    for folder in list(_written_in):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            m = _PARTIAL_RE.match(name)
            if m and (m.group(1), m.group(2)) == me:
                with contextlib.suppress(OSError):
                    (folder / name).unlink()
                    removed.append(folder / name)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk, a quota, a file system that takes no data
            raise _sink_error("write", Path(path), e) from e
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_image_path(path: str | os.PathLike) -> Path:
    """An output image's extension must be one artcam writes: the same one-line refusal (exit 2) from
    every command, before any work, never an OpenCV error after it. No extension means PNG."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext and ext not in IMAGE_EXTENSIONS:
        raise SinkError(f"unknown output type {ext!r} for {path}", f"for an image use one of {' '.join(IMAGE_EXTENSIONS)}")
    return path


def write_image(path: str | os.PathLike, image_bgr: np.ndarray, quality: int = 95) -> Path:
    """Encode in memory, then write atomically (PNG/JPEG/... chosen by the extension)."""
    path = check_image_path(path)
    ext = path.suffix.lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    try:
        ok, buf = cv2.imencode(ext, image_bgr, params)
    except cv2.error:
        ok = False
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
