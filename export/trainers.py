"""Checkpoint kind -> the trainer that rebuilds its net (its ``export_spec``): the one mapping.

The trainers sit a layer above export, so export never names them in code: each registers itself as an
entry point (group ``artcam.trainers`` in pyproject.toml). ``artcam export``, ``artcam train`` and
``artcam bench CHECKPOINT`` all find a trainer here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from types import ModuleType

from artcam.runtime.errors import ModelError

TRAINER_GROUP = "artcam.trainers"
TRAINERS = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=TRAINER_GROUP)}


def trainer_module(kind: str) -> ModuleType:
    """The trainer module of checkpoints of ``kind`` (ModelError when none or not importable)."""
    if kind not in TRAINERS:
        raise ModelError(f"no trainer for checkpoints of kind {kind!r}", f"kinds: {', '.join(TRAINERS) or '(none)'}")
    module_name = TRAINERS[kind]
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(f"cannot import {module_name} for a {kind!r} checkpoint ({e})",
                         "install the train extra: pip install 'artcam[train]'") from e


def read_checkpoint(path: Path) -> dict:
    """A checkpoint written by `artcam train` (any registered kind); ModelError otherwise."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ModelError(f"cannot read checkpoint {path}: {e}", "pass a checkpoint written by `artcam train`") from e
    kind = ckpt.get("kind") if isinstance(ckpt, dict) else None
    if not TRAINERS:
        raise ModelError(f"no trainer is registered under the entry point group {TRAINER_GROUP!r}",
                         "reinstall artcam: pip install -e '.[train]'")
    if kind not in TRAINERS:
        what = f"kind {kind!r}" if isinstance(ckpt, dict) and "kind" in ckpt else "no 'kind' field"
        raise ModelError(f"{path} is not an artcam training checkpoint ({what})",
                         f"pass a checkpoint from `artcam train {{{','.join(TRAINERS)}}}` (kinds: {', '.join(TRAINERS)})")
    return ckpt


def export_spec_for(ckpt: dict) -> dict:
    """Dispatch to the registered trainer's ``export_spec`` (the trainer knows how to rebuild its net)."""
    module = trainer_module(ckpt["kind"])
    spec = module.export_spec(ckpt)
    missing = {"model", "meta", "example_inputs", "output_names"} - set(spec)
    if missing:
        raise ModelError(f"{module.__name__}.export_spec returned no {sorted(missing)}")
    return spec
