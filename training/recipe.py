"""Training recipes as TOML files; ``key=value`` arguments override them.

A recipe is a nested table checked against a schema of defaults: every key it names must exist there
(an unknown key is an error that lists the known ones), and a value must have the default's type.
``[loss.NAME]`` tables are open: the loss terms check their own options (``style_terms``).

    artcam train stylize --recipe training/recipes/stylizer_nano.toml train.minutes=30 loss.style.weight=80
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Mapping

from artcam.training.common import TrainingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
OPEN_TABLES = ("loss",)  # tables whose sub-tables are named freely (loss terms), validated elsewhere
FREE_TABLES = ("net.options",)  # tables whose keys are checked elsewhere (the net's config)


def _merge(base: dict, extra: Mapping, where: str, schema: Mapping) -> None:
    for key, value in extra.items():
        path = f"{where}.{key}" if where else key
        if (where in OPEN_TABLES or path in FREE_TABLES) and isinstance(value, Mapping):
            base[key] = {**base.get(key, {}), **value}
            continue
        if key not in schema:
            known = ", ".join(sorted(schema)) or "(none)"
            raise TrainingError(f"unknown recipe key {path!r}", f"known keys{' in [' + where + ']' if where else ''}: {known}")
        if isinstance(schema[key], dict):
            if not isinstance(value, Mapping):
                raise TrainingError(f"recipe key {path!r} must be a table", f"write [{path}] with keys below it")
            _merge(base[key], value, path, schema[key])
        else:
            base[key] = _checked(path, value, schema[key])


def _checked(path: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise TrainingError(f"recipe key {path!r} is {value!r}", f"give a {type(default).__name__} like {default!r}")
    return value


def parse_value(text: str) -> Any:
    """A TOML value (number, bool, string, array, inline table); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def recipe_names() -> list[str]:
    """The shipped recipes (``training/recipes/*.toml``), by name."""
    return sorted(x.stem for x in RECIPE_DIR.glob("*.toml"))


def resolve_recipe_path(spec: str | Path) -> Path:
    """A path, or the name of a shipped recipe (``stylizer_nano`` -> ``training/recipes/stylizer_nano.toml``)."""
    p = Path(spec)
    if p.is_file():
        return p
    shipped = RECIPE_DIR / f"{spec}.toml"
    if shipped.is_file():
        return shipped
    raise TrainingError(f"recipe {spec} not found", f"pass a .toml file or one of: {', '.join(recipe_names())}")


def load_recipe(spec: str | Path | None, schema: Mapping, overrides: list[str] = ()) -> dict:
    """The schema's defaults, then the recipe file, then ``key=value`` overrides (dotted keys)."""
    recipe = copy.deepcopy(dict(schema))
    if spec:
        path = resolve_recipe_path(spec)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise TrainingError(f"cannot read recipe {path}: {e}", "fix the TOML syntax") from e
        _merge(recipe, data, "", schema)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise TrainingError(f"override {item!r} is not key=value", "e.g. train.minutes=30 or loss.style.weight=80")
        nested: dict = {}
        cur = nested
        parts = key.strip().split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = parse_value(text.strip())
        _merge(recipe, nested, "", schema)
    return recipe
