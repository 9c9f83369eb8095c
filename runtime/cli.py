"""The ``artcam`` command: a registry of verbs, each imported only when it runs.

Runtime verbs live in ``artcam.runtime`` and never import torch; ``train`` and ``export`` pull in
the heavy dependencies only when called.
"""

from __future__ import annotations

import importlib
import sys

# verb -> (module, function, one-line help)
VERBS: dict[str, tuple[str, str, str]] = {
    "demo": ("artcam.runtime.commands", "demo_main", "stylize + classify a built-in moving picture, headless, write a video"),
    "live": ("artcam.runtime.commands", "live_main", "real-time stylize/classify from a camera, file, folder, URL or `sample`"),
    "stylize": ("artcam.runtime.commands", "stylize_main", "stylize images, folders or videos to files"),
    "classify": ("artcam.runtime.commands", "classify_main", "classify images, folders or videos (top-k per head)"),
    "generate": ("artcam.runtime.commands", "generate_main", "paint new images with a generator model, as a grid"),
    "models": ("artcam.runtime.commands", "models_main", "list shipped and user models with their metadata"),
    "info": ("artcam.runtime.commands", "info_main", "versions, execution providers and devices"),
    "bench": ("artcam.benchmarks.cli", "main", "latency benchmarks of models and of the live pipeline"),
    "export": ("artcam.export.cli", "main", "export a checkpoint or ONNX model: ONNX, FP16, INT8, TensorRT, Triton"),
    "train": ("artcam.training.cli", "main", "train classifiers, stylizers and generators (needs the train extra)"),
}


def usage() -> str:
    lines = ["usage: artcam <command> [options]", "", "commands:"]
    lines += [f"  {v:<10} {h}" for v, (_, _, h) in VERBS.items()]
    lines += ["", "Run `artcam <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"artcam {version('artcam')}")
        return 0
    verb = argv.pop(0)
    if verb not in VERBS:
        print(f"artcam: error: unknown command {verb!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, func, _ = VERBS[verb]
    extra = {"train": "train", "export": "export", "bench": "bench"}.get(verb)
    hint = f" (install it with: pip install 'artcam[{extra}]')" if extra else ""
    try:
        return guarded(lambda: getattr(importlib.import_module(module), func)(argv))
    except ImportError as e:  # an optional heavy dependency (torch, onnx, ...) is missing
        what = e.name or str(e)
        print(f"artcam: error: `artcam {verb}` needs {what}, which cannot be imported{hint}", file=sys.stderr)
        return 2


def guarded(fn) -> int:
    """Run ``fn``; a user error becomes one line on stderr and its exit code (2), Ctrl-C exits 130."""
    from .errors import ArtcamError

    try:
        return int(fn() or 0)
    except ArtcamError as e:
        print(f"artcam: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("artcam: interrupted", file=sys.stderr)
        return 130


def run_script(main) -> None:
    """``if __name__ == "__main__": run_script(main)`` for the modules run with ``python -m``."""
    sys.exit(guarded(lambda: main(sys.argv[1:])))


if __name__ == "__main__":
    sys.exit(main())
