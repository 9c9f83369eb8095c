"""Finding models by name: the shipped ones (package data) and the user's own folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError
from .modelfile import ModelMeta, read_model_file

SHIPPED_DIR = Path(__file__).parent / "models"

# What `artcam demo`, `stylize` and `classify` use when no --model is given.
DEFAULT_STYLIZER = "stylizer_nano"
DEFAULT_CLASSIFIER = "classifier_lite0"
DEFAULT_GENERATOR = "generator_art64"


def check_not_shipped(path: str | os.PathLike, what: str = "output") -> Path:
    """``path``, unless it lies in the shipped models' folder: a default or a folder never picks a
    shipped model to overwrite; replacing one takes its exact file path, given explicitly."""
    p = Path(path)
    if p.resolve().parent == SHIPPED_DIR.resolve():
        raise ModelError(f"the default {what} {p} is in the shipped models' folder",
                         f"to write a shipped model there, name the file explicitly: -o {p}")
    return p


def user_dir() -> Path:
    """``$ARTCAM_MODELS``, else ``~/.local/share/artcam/models``."""
    env = os.environ.get("ARTCAM_MODELS")
    return Path(env) if env else Path.home() / ".local" / "share" / "artcam" / "models"


@dataclass
class ModelEntry:
    name: str
    path: Path
    origin: str  # shipped | user
    meta: ModelMeta | None = None
    error: str = ""


def list_models(load_meta: bool = True) -> list[ModelEntry]:
    entries = []
    for origin, folder in (("shipped", SHIPPED_DIR), ("user", user_dir())):
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.onnx")):
            e = ModelEntry(p.stem, p, origin)
            if load_meta:
                try:
                    _, e.meta = read_model_file(p)
                except ModelError as err:
                    e.error = err.message
            entries.append(e)
    return entries


def resolve(spec: str | os.PathLike) -> Path:
    """A path to an existing file, or the name of a shipped/user model."""
    p = Path(spec)
    if p.suffix and (p.exists() or os.sep in str(spec) or "/" in str(spec)):
        if not p.is_file():
            raise ModelError(f"model file not found: {p}", "check the path, or run `artcam models`")
        return p
    for e in list_models(load_meta=False):
        if e.name == str(spec):
            return e.path
    if p.is_file():
        return p
    names = ", ".join(e.name for e in list_models(load_meta=False)) or "none installed"
    raise ModelError(f"no model named {str(spec)!r}", f"known models: {names}; or pass a path to an .onnx file")


def style_names(spec: str) -> list[str]:
    """The style names a ``--style`` value mentions (``mine:0.7,starry_night:0.3`` -> both), indices left out."""
    names = [part.strip().partition(":")[0] for part in str(spec).split(",")]
    return [n for n in names if n and not n.isdigit()]


def stylizer_for(spec: str, default: str = DEFAULT_STYLIZER) -> str:
    """The stylizer to load for a ``--style`` value when none was named: ``default`` if it holds every style
    mentioned, else the one model that does (a style added by `artcam style add` lives in a user model),
    else ``default`` (whose error then lists its styles and where the others are). Only the default's
    metadata is read unless it lacks a style: this runs at every start."""
    names = style_names(spec)
    if not names:
        return default
    try:
        _, meta = read_model_file(resolve(default))
    except ModelError:
        return default  # loading it says what is wrong
    if meta is None or all(n in (meta.styles or ()) for n in names):
        return default
    holders = [e for e in list_models() if e.meta is not None and e.meta.task == "stylize"
               and all(n in (e.meta.styles or ()) for n in names)]
    return holders[0].name if len(holders) == 1 else default


def style_hint(style: str, styles: tuple[str, ...] | list[str]) -> str:
    """The hint for an unknown style: this model's styles, and which other models hold that style."""
    hint = f"this model has: {', '.join(styles)}"
    others = [e.name for e in list_models() if e.meta is not None and style in (e.meta.styles or ())]
    if others:
        hint += f"; {style!r} is in the model{'s' if len(others) > 1 else ''} {', '.join(others)}: use that model"
    return hint
