"""Shared training plumbing: seeds, devices, DDP, atomic resumable checkpoints, progress, provenance.

Every trainer (classify, stylize, generate) uses these, so resume/DDP/NaN handling behave alike.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from artcam.runtime.errors import ArtcamError, Interrupted
from artcam.runtime.fileio import IMAGE_EXTENSIONS, atomic_path


class TrainingError(ArtcamError):
    """A training run that cannot start or continue (bad data, wrong checkpoint, divergence)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("CUDA was asked for but torch sees no GPU", "use --device cpu")
    return torch.device(name)


# --- distributed (torchrun) -------------------------------------------------------------------


def setup_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the torchrun group when launched by torchrun; returns (rank, world_size, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def cleanup_distributed(finished: bool = True) -> None:
    """Leave the torchrun group. After a normal finish every rank first waits for the others
    (rank 0 is still writing samples and checkpoints), so no rank tears its gloo links down under
    a peer that is still using them; after an error there is no waiting on a peer that may be dead."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# --- checkpoints ------------------------------------------------------------------------------


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically: a run killed mid-save leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, kind: str, arch: str | None = None) -> dict[str, Any]:
    """Load a checkpoint written by a trainer of ``kind``; refuse one of another kind or arch."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise TrainingError(f"cannot read checkpoint {path}: {e}", "it may be corrupt; use an older one") from e
    if not isinstance(state, dict) or state.get("kind") != kind:
        got = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise TrainingError(f"{path} is a {got!r} checkpoint, not a {kind!r} one", f"pass a checkpoint from `artcam train {kind}`")
    if arch is not None and state.get("arch") != arch:
        raise TrainingError(
            f"{path} was trained with --arch {state.get('arch')}, not {arch}",
            f"pass --arch {state.get('arch')} or start without --resume",
        )
    return state


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


def check_finite(loss: torch.Tensor, step: int, last_good: str | Path | None) -> None:
    """Stop on NaN/inf loss; the last good checkpoint is kept untouched."""
    if not torch.isfinite(loss).all():
        where = f"; the last good checkpoint is {last_good}" if last_good else ""
        raise TrainingError(f"loss became {loss.item()} at step {step}{where}", "lower the learning rate and --resume")


# --- data -------------------------------------------------------------------------------------


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"data folder not found: {folder}")
    it: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


# --- stopping between steps ---------------------------------------------------------------------


class StopBetweenSteps:
    """Ctrl-C or SIGTERM during training ends the run *between* two steps, with a fresh checkpoint.

    A KeyboardInterrupt raised wherever the signal lands (inside autograd, an optimizer step or
    ``torch.save``) loses the steps since the last checkpoint and leaves the stop to code that was
    never written to be interrupted. Inside this context the first signal only sets
    :attr:`signal_name`; the loop calls :meth:`check` after each step, which runs ``save`` and raises
    :class:`Interrupted` (exit 130, 143 for SIGTERM). A second signal stops at once, as before.
    Outside the main thread, or when a signal is ignored (a job started with ``nohup`` or ``&``),
    nothing is installed and that signal keeps its old behaviour.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum, frame) -> None:
        if self.signal_name is not None:  # the second one: do not wait for the step
            self._restore()
            raise Interrupted(terminated=signum == signal.SIGTERM)
        self.signal_name = signal.Signals(signum).name
        print(f"{self.signal_name}: stopping after this step (again to stop now)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopBetweenSteps:
        if self.enabled:
            for s in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(s) is not signal.SIG_IGN:
                    self._previous[s] = signal.signal(s, self._on_signal)
        return self

    def _restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()

    def check(self, step: int, save) -> None:
        """After a whole step: if a stop was asked for, ``save()`` (returns the checkpoint path) and raise."""
        if self.signal_name is None:
            return
        path = save()
        raise Interrupted(f"stopped after step {step}" + (f"; resume with --resume {path}" if path else ""),
                          terminated=self.signal_name == "SIGTERM")


def quiet_worker(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a terminal's Ctrl-C reaches the workers too; they leave the stop
    to the main process (:class:`StopBetweenSteps`) instead of dying under it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- progress and provenance ------------------------------------------------------------------


class Progress:
    """One status line per ``every`` steps: step, losses, images/s (tqdm when installed and a TTY)."""

    def __init__(self, total: int, desc: str = "", every: int = 10, enabled: bool = True):
        self.total, self.desc, self.every, self.enabled = total, desc, every, enabled
        self.t0 = time.perf_counter()
        self.images = 0
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, dynamic_ncols=True)
            except ImportError:
                pass

    def rate(self) -> float:
        """Images per second since the start."""
        return self.images / max(time.perf_counter() - self.t0, 1e-9)

    def update(self, step: int, images: int, **metrics: float) -> None:
        self.images += images
        if not self.enabled:
            return
        rate = self.rate()
        text = " ".join(f"{k}={v:.4g}" for k, v in metrics.items()) + f" img/s={rate:.1f}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text)
        elif step % self.every == 0 or step == self.total:
            print(f"{self.desc} step {step}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(argv: list[str], data: str, **extra: Any) -> dict[str, Any]:
    """What goes into the model file's ``provenance``: how to make this model again."""
    return {
        "command": "artcam train " + " ".join(argv),
        "data": data,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(),
        "torch": torch.__version__,
        **extra,
    }
