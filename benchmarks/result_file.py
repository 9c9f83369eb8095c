"""Result files: what a benchmark command measured, the command line that measured it, and the machine.

Every figure the README quotes is read from one of these files by ``readme_numbers``, so each number can be
traced to the command that produced it and re-measured by running that command again.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from artcam.runtime.fileio import atomic_write_text

from .envinfo import environment


def command_line(prog: str, argv: list[str] | None = None) -> str:
    """``prog`` followed by the arguments as a shell would need them quoted."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join([prog, *(shlex.quote(str(a)) for a in args)])


def write_result(path: str | Path | None, doc: dict[str, Any], prog: str, argv: list[str] | None = None) -> Path | None:
    """``doc`` plus ``command`` and ``environment``, written atomically as JSON (NaN is refused); nothing
    when ``path`` is empty (a command's ``--json`` left unset)."""
    if not path:
        return None
    out = {"command": command_line(prog, argv), **doc, "environment": environment()}
    return atomic_write_text(path, json.dumps(out, indent=2, allow_nan=False) + "\n")
