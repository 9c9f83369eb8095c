"""artcam runtime: numpy, OpenCV and ONNX Runtime only (never torch).

The names a user needs, importable from here (each loaded on first use, so ``import artcam.runtime`` stays
cheap)::

    from artcam.runtime import load_model, Stylizer, Classifier, Generator, open_source, open_sink, Pipeline
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "load_model": "artcam.runtime.loading",
    "Stylizer": "artcam.runtime.tasks",
    "Classifier": "artcam.runtime.tasks",
    "Generator": "artcam.runtime.tasks",
    "open_source": "artcam.runtime.sources",
    "open_sink": "artcam.runtime.sinks",
    "Pipeline": "artcam.runtime.pipeline",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'artcam.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
