"""``artcam train KIND --recipe NAME [key=value ...]``: the kinds are the registered trainers (``export.trainers``)."""

from __future__ import annotations

from artcam.export.trainers import TRAINERS, trainer_module


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in TRAINERS:
        print(f"usage: artcam train {{{','.join(TRAINERS)}}} --recipe NAME|FILE [key=value ...] [options]\n\n"
              "Run `artcam train KIND --help` for a kind's recipes and recipe keys.")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return int(trainer_module(argv[0]).main(argv[1:]) or 0)
