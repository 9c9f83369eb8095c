"""The ``artcam`` command: a registry of verbs, each imported only when it runs.

Runtime verbs live in ``artcam.runtime`` and never import torch; ``train`` and ``export`` pull in
the heavy dependencies only when called.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback

# verb -> (module, function, one-line help)
VERBS: dict[str, tuple[str, str, str]] = {
    "demo": ("artcam.runtime.commands", "demo_main", "stylize + classify a built-in moving picture, headless, write a video"),
    "live": ("artcam.runtime.commands", "live_main", "real-time stylize/classify from a camera, file, folder, URL or `sample`"),
    "stylize": ("artcam.runtime.commands", "stylize_main", "stylize images, folders or videos to files"),
    "classify": ("artcam.runtime.commands", "classify_main", "classify images, folders or videos (top-k per head)"),
    "generate": ("artcam.runtime.commands", "generate_main", "paint new images with a generator model, as a grid"),
    "models": ("artcam.runtime.commands", "models_main", "list shipped and user models with their metadata"),
    "info": ("artcam.runtime.commands", "info_main", "versions, execution providers and devices"),
    "service": ("artcam.runtime.service", "main", "run `live` at boot as a systemd service: install, uninstall, status"),
    "bench": ("artcam.benchmarks.cli", "main", "latency benchmarks of models and of the live pipeline"),
    "style": ("artcam.training.style_add", "main", "add your own painting as a new style, in minutes on a CPU (train extra)"),
    "export": ("artcam.export.cli", "main", "export a checkpoint or ONNX model: ONNX, FP16, INT8, TensorRT, Triton"),
    "train": ("artcam.training.cli", "main", "train classifiers, stylizers and generators (needs the train extra)"),
    "serve": ("artcam.serving.server", "main", "serve models through Triton Inference Server, HTTP + gRPC (serve extra)"),
}


class ArgParser(argparse.ArgumentParser):
    """The argument parser of every artcam command and script: a bad argument is one line on stderr
    and exit 2 (``SystemExit(2)``, argparse's own contract), e.g.
    ``artcam live: error: argument --frames: ... (see `artcam live --help`)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def usage() -> str:
    lines = ["usage: artcam <command> [options]", "", "commands:"]
    lines += [f"  {v:<10} {h}" for v, (_, _, h) in VERBS.items()]
    lines += ["", "Run `artcam <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _pop_debug(argv)
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
    extra = {"train": "train", "style": "train", "export": "export", "bench": "bench", "serve": "serve"}.get(verb)
    hint = f" (install it with: pip install 'artcam[{extra}]')" if extra else ""

    def run() -> int:
        try:
            return getattr(importlib.import_module(module), func)(argv)
        except ImportError as e:  # an optional heavy dependency (torch, onnx, ...) is missing
            if debug:
                traceback.print_exc()
            what = e.name or str(e)
            print(f"artcam: error: `artcam {verb}` needs {what}, which cannot be imported{hint}", file=sys.stderr)
            return 2

    # training manages its own worker processes and signals; everything else turns SIGTERM into a
    # clean stop (temporary files removed, exit 143) like Ctrl-C
    return guarded(run, debug=debug, sigterm=verb not in ("train", "style"))


def _pop_debug(argv: list[str]) -> bool:
    """Take ``--debug`` out of the arguments (anywhere before a ``--``); ARTCAM_DEBUG=1 does the same."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = "--debug" in argv[:end]
    if found:
        argv[:end] = [x for x in argv[:end] if x != "--debug"]
    return found or os.environ.get("ARTCAM_DEBUG", "") not in ("", "0")


_terminated = False  # SIGTERM arrived: the KeyboardInterrupt it raised exits 143, not 130


def _on_sigterm(signum, frame):
    global _terminated
    _terminated = True
    raise KeyboardInterrupt("terminated")


def guarded(fn, debug: bool | None = None, sigterm: bool = False) -> int:
    """Run ``fn`` under the exit-code contract (see ``artcam.runtime.errors``): a user error is one
    line and exit 2, Ctrl-C exits 130 (SIGTERM 143 when ``sigterm``), any other exception is one
    line and exit 1 (with the traceback when ``debug``: ``--debug`` or ARTCAM_DEBUG=1)."""
    from .errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED, ArtcamError

    if debug is None:
        debug = os.environ.get("ARTCAM_DEBUG", "") not in ("", "0")
    previous = None
    if sigterm and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(fn() or 0)
    except ArtcamError as e:
        if debug:
            traceback.print_exc()
        print(f"artcam: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_BAD_INPUT)
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        from .fileio import remove_own_partials

        remove_own_partials()
        terminated = _terminated or getattr(e, "terminated", False)
        msg = getattr(e, "message", None) or "interrupted"
        print(f"artcam: {'terminated' if terminated else 'interrupted'}"
              + (f"; {msg}" if msg not in ("interrupted", "terminated") else ""), file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except SystemExit:
        raise
    except BrokenPipeError:  # `artcam ... | head`: the reader left; not an error of ours
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as e:
        if debug:
            traceback.print_exc()
        text = " ".join(str(e).split())
        if len(text) > 300:
            text = text[:300] + "..."
        print(f"artcam: internal error: {type(e).__name__}{': ' + text if text else ''}"
              + ("" if debug else " (run again with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_script(main) -> None:
    """``if __name__ == "__main__": run_script(main)`` for the modules run with ``python -m``."""
    argv = sys.argv[1:]
    debug = _pop_debug(argv)
    sys.exit(guarded(lambda: main(argv), debug=debug, sigterm=True))


if __name__ == "__main__":
    sys.exit(main())
