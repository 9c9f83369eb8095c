"""The control API's contract: JSON bodies in, checked requests to the pipeline out, nothing else.

Kept apart from the HTTP plumbing (``viewer.py``) so what a request may say, and the 400 message
for what it may not, is one small piece that tests read without sockets. Every check runs before
anything changes: a bad request leaves the running style, strength and pause state as they were.
Values are applied by the inference thread at the next frame (``FrameProcessor.request``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InputError

MAX_BODY_BYTES = 16 * 1024  # a blend of a few hundred styles fits; anything bigger is not a control request
MAX_JSON_DEPTH = 8  # the deepest request is 2 ({"blend": {...}}); 16 KB of brackets must not reach the parser


def parse_json(raw: bytes) -> Any:
    """A request body -> its JSON value; :class:`InputError` (a 400) when it is not UTF-8 JSON or nests
    deeper than ``MAX_JSON_DEPTH``. The depth is counted before parsing (Python's parser recurses and a
    few thousand brackets raise ``RecursionError``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"malformed JSON: {e}") from None
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise InputError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        elif ch in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InputError(f"malformed JSON: {e}") from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _only(body: dict, allowed: tuple[str, ...], what: str) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise InputError(f"{what}: unknown field {extra[0]!r}", f"allowed: {', '.join(allowed)}")


def style_request(body: Any, styles: list[str]):
    """``{"name": "starry_night"}``, ``{"index": 2}`` or ``{"blend": {"a": 0.7, "b": 0.3}}`` (or a list with
    one weight per style) -> what ``FrameProcessor.request(style=...)`` takes; :class:`InputError` if bad."""
    if not isinstance(body, dict):
        raise InputError("style: the body must be a JSON object", 'e.g. {"name": "...", "index": 0 or "blend": {...}}')
    _only(body, ("name", "index", "blend"), "style")
    given = [k for k in ("name", "index", "blend") if k in body]
    if len(given) != 1:
        raise InputError("style: give exactly one of name, index or blend")
    if not styles:
        raise InputError("style: this model has no style input")
    key, value = given[0], body[given[0]]
    if key == "name":
        if not isinstance(value, str) or value not in styles:
            raise InputError(f"unknown style {value!r}", f"this model has: {', '.join(styles)}")
        return styles.index(value)
    if key == "index":
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"style index {value!r} is not a whole number")
        if not 0 <= value < len(styles):
            raise InputError(f"style index {value} is out of range 0..{len(styles) - 1}")
        return value
    if isinstance(value, list):
        weights = value
    elif isinstance(value, dict):
        unknown = [k for k in value if k not in styles]
        if unknown:
            raise InputError(f"unknown style {unknown[0]!r} in blend", f"this model has: {', '.join(styles)}")
        weights = [value.get(s, 0.0) for s in styles]
    else:
        raise InputError("style blend must be an object {style: weight} or a list of weights")
    bad = [w for w in weights if not _is_number(w)]
    if bad:
        raise InputError(f"style blend weight {bad[0]!r} is not a number")
    return [float(w) for w in weights]  # finite, sign and size are checked by the stylizer


def strength_request(body: Any) -> float:
    """``{"strength": 0.6}`` -> 0.6; the range (0..1, finite) is checked by the stylizer."""
    if not isinstance(body, dict) or "strength" not in body:
        raise InputError("strength: the body must be a JSON object with a strength", 'e.g. {"strength": 0.6}')
    _only(body, ("strength",), "strength")
    value = body["strength"]
    if not _is_number(value):
        raise InputError(f"strength {value!r} is not a number", "give a number in 0..1")
    if not math.isfinite(value):
        raise InputError(f"strength {value} is not a finite number", "give a number in 0..1")
    return float(value)


def pause_request(body: Any, paused: bool) -> bool:
    """``{"paused": true|false}`` -> that; ``{}`` toggles ``paused``."""
    if not isinstance(body, dict):
        raise InputError("pause: the body must be a JSON object", 'e.g. {"paused": true}, or {} to toggle')
    _only(body, ("paused",), "pause")
    if "paused" not in body:
        return not paused
    if not isinstance(body["paused"], bool):
        raise InputError(f"paused {body['paused']!r} is not true or false")
    return body["paused"]
