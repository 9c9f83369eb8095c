"""Image sizes on the command line: one spelling everywhere, ``HxW`` (height x width, numpy's order).

``480x640`` is 480 rows by 640 columns; one number is a square (``224``). Options that took another
spelling (``WxH`` strings, two numbers) still take it for one release and say so in one line
(:func:`deprecated_size`).
"""

from __future__ import annotations

import argparse
import sys

from .errors import InputError

SPELLING = "HxW, e.g. 480x640 (one number: a square)"
MAX_SIDE = 16384


def parse_size(text: str) -> tuple[int, int]:
    """``"480x640"`` -> (480, 640); ``"224"`` -> (224, 224). InputError otherwise."""
    s = str(text).strip().lower()
    try:
        parts = [int(x) for x in s.split("x")]
    except ValueError:
        raise InputError(f"size {text!r} is not HxW or N", f"write {SPELLING}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1 or max(parts) > MAX_SIDE:
        raise InputError(f"size {text!r} is not HxW or N within 1..{MAX_SIDE} px", f"write {SPELLING}")
    return parts[0], parts[1]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """A comma list of sizes (``"256,480x640"``), duplicates dropped, order kept."""
    out = [parse_size(item) for item in str(text).split(",") if item.strip()]
    if not out:
        raise InputError("no image sizes given", f"write {SPELLING}; several joined by commas")
    return list(dict.fromkeys(out))


def size_arg(text: str) -> tuple[int, int]:
    """``type=`` of an argparse option holding one size: a bad one is argparse's one-line error, exit 2."""
    try:
        return parse_size(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def deprecated_size(prog: str, option: str, value: str | list, new_option: str) -> tuple[int, int]:
    """An old spelling (``--size 640x480`` meaning WxH, or two numbers ``H W``) -> (h, w), with a deprecation line."""
    if isinstance(value, (list, tuple)):  # H W
        h, w = parse_size(f"{value[0]}x{value[1]}") if len(value) == 2 else (0, 0)
        if not h:
            raise InputError(f"{option} takes one size", f"write {new_option} {SPELLING}")
    else:  # WxH
        w, h = parse_size(value)
    print(f"{prog}: {option} is deprecated and goes in the next release; write {new_option} {h}x{w} (HxW)",
          file=sys.stderr)
    return h, w


def deprecated_sizes(prog: str, option: str, text: str, new_option: str) -> list[tuple[int, int]]:
    """An old comma list of ``WxH`` sizes -> [(h, w), ...], with one deprecation line for the whole list."""
    out = [(h, w) for w, h in parse_sizes(text)]
    print(f"{prog}: {option} is deprecated and goes in the next release; write {new_option} "
          f"{','.join(f'{h}x{w}' for h, w in out)} (HxW)", file=sys.stderr)
    return out
