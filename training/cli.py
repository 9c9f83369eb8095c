"""``artcam train KIND --recipe NAME [key=value ...]``: the kinds are the registered trainers (``export.trainers``)."""

from __future__ import annotations

import importlib

from artcam.export.trainers import TRAINERS


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in TRAINERS:
        print(f"usage: artcam train {{{','.join(TRAINERS)}}} --recipe NAME|FILE [key=value ...] [options]\n\n"
              "Run `artcam train KIND --help` for a kind's recipes and recipe keys.")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    # an ImportError (no torch) reaches the CLI, which names the extra to install
    return int(importlib.import_module(TRAINERS[argv[0]]).main(argv[1:]) or 0)
