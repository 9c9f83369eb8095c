"""``artcam train classify|stylize|generate``: each task's trainer lives in its own module."""

from __future__ import annotations

import importlib

TASKS = {
    "classify": ("artcam.training.classify", "train an art-style / object classifier"),
    "stylize": ("artcam.training.stylize", "train a fast feed-forward style-transfer network"),
    "generate": ("artcam.training.generate", "train a GAN that paints new artworks"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in TASKS:
        print("usage: artcam train {classify,stylize,generate} [options]\n")
        for k, (_, h) in TASKS.items():
            print(f"  {k:<10} {h}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(TASKS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)
