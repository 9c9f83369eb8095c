"""An output that names the input is refused unless the user says so (``--overwrite-input``).

``stylize photo.jpg -o photo.jpg`` would replace the only copy of the photo with its stylized version,
so the commands that read files and write files compare the two before anything is loaded or written:
the same path, a symlink or a hard link to it, or (for a folder output) the folder the inputs are in.
With the flag the run goes ahead safely: outputs are written under a temporary name and renamed over
the input only when complete, so the input is read whole before it is replaced.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .errors import InputError

FLAG = "--overwrite-input"


def add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(FLAG, action="store_true",
                   help="allow -o to name the input itself (it is replaced once the output is complete)")


def input_files(source) -> list[Path]:
    """The files a source reads: the images of an image list, the video of a capture; [] for cameras,
    streams and generated frames."""
    paths = getattr(source, "paths", None)
    if paths:
        return [Path(p) for p in paths]
    target = getattr(source, "target", None)
    if isinstance(target, str) and "://" not in target and "!" not in target and os.path.isfile(target):
        return [Path(target)]
    return []


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare the names
        return a.resolve() == b.resolve()


def refuse_input_as_output(source, output: str | None, allowed: bool) -> None:
    """:class:`InputError` (exit 2) when ``output`` is one of the source's files, or a folder output
    is the folder they are in, unless ``allowed`` (the user passed ``--overwrite-input``)."""
    if allowed or not output or output in ("window", "null", "none") or "://" in output:
        return
    out = Path(output)
    files = input_files(source)
    hint = f"write to another name, or pass {FLAG} to replace it"
    for f in files:
        if _same(f, out):
            raise InputError(f"-o {output} is the input {f}; it would be overwritten", hint)
    if files and (out.is_dir() or not out.suffix):
        for folder in {f.parent for f in files}:
            if _same(folder, out):
                raise InputError(f"-o {output} is the folder the inputs are in; they would be overwritten", hint)
