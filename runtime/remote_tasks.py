"""Tasks whose model runs on an ``artcam serve`` (Triton) server, beside the local ones in ``tasks``.

:class:`RemoteStylizer` / :class:`RemoteClassifier` stand in for :class:`~artcam.runtime.tasks.Stylizer`
and :class:`~artcam.runtime.tasks.Classifier` in the pipeline: same ``stylize`` / ``classify`` /
``timing`` / ``close``, so the HUD and the stats are the same. The protocol client is
:class:`~artcam.runtime.backends.remote.RemoteModel`.
"""

from __future__ import annotations

import time

import numpy as np

from .backends.remote import RemoteModel
from .errors import InputError
from .tasks import Prediction


class _RemoteMeta:
    """The bits of :class:`ModelMeta` the pipeline and HUD read."""

    def __init__(self, name: str, task: str, styles=()):
        self.name, self.task, self.styles = name, task, tuple(styles)


class RemoteStylizer:
    """Stands in for :class:`~artcam.runtime.tasks.Stylizer`; the server does the work."""

    def __init__(self, url: str, model: str, style: int | str | None = 0, timeout_s: float = 30.0):
        self.remote = RemoteModel(url, model, "stylize", timeout_s)
        self.styles = list(self.remote.desc.get("styles", []))
        self.meta = _RemoteMeta(model, "stylize", self.styles)
        self.timing = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        self.split = self.remote.split
        self._style: str | None = None
        self.set_style(0 if style is None else style)

    @property
    def style_name(self) -> str:
        if not self.styles:
            return self.meta.name
        s = self._style or "0"
        return self.styles[int(s)] if s.isdigit() and int(s) < len(self.styles) else s

    def set_style(self, style) -> None:
        if not self.styles:
            self._style = None
            return
        s = str(style)
        if s.isdigit() and not 0 <= int(s) < len(self.styles):
            raise InputError(f"style index {s} is out of range 0..{len(self.styles) - 1}")
        if not s.isdigit() and "," not in s and ":" not in s and s not in self.styles:
            raise InputError(f"unknown style {s!r}", f"this model has: {', '.join(self.styles)}")
        self._style = s

    def step_style(self, delta: int) -> None:
        if self.styles:
            cur = self.styles.index(self.style_name) if self.style_name in self.styles else 0
            self._style = str((cur + delta) % len(self.styles))

    def warmup(self, shape: tuple[int, int] = (480, 640)) -> None:
        self.stylize(np.zeros((*shape, 3), np.uint8))
        self.remote.reset_split()

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        params = {"style": self._style} if self._style is not None else None
        res, t = self.remote.infer(frame, params, ["image"])
        t2 = time.perf_counter()
        img = res.as_numpy("image")[0]
        self.timing = {"pre": t["pre"], "infer": t["infer"], "post": (time.perf_counter() - t2) * 1e3}
        self.last_split = {"server": t["server"], "network": t["network"]}
        return img

    def close(self) -> None:
        self.remote.close()


class RemoteClassifier:
    """Stands in for :class:`~artcam.runtime.tasks.Classifier`; the server does the work."""

    def __init__(self, url: str, model: str, top_k: int = 3, timeout_s: float = 30.0):
        self.remote = RemoteModel(url, model, "classify", timeout_s)
        self.heads = self.remote.desc.get("heads", [])
        self.meta = _RemoteMeta(model, "classify")
        self.top_k = top_k
        self.timing = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        self.split = self.remote.split
        self._outputs = [f"{h['key']}_{s}" for h in self.heads for s in ("labels", "probs")]

    def warmup(self) -> None:
        self.classify(np.zeros((240, 320, 3), np.uint8))
        self.remote.reset_split()

    def classify(self, frame: np.ndarray) -> list[Prediction]:
        res, t = self.remote.infer(frame, {"top_k": int(self.top_k)}, self._outputs)
        t2 = time.perf_counter()
        preds = []
        for h in self.heads:
            labels = res.as_numpy(f"{h['key']}_labels").reshape(-1)
            probs = res.as_numpy(f"{h['key']}_probs").reshape(-1)
            preds.append(Prediction(h["head"], [b.decode() if isinstance(b, bytes) else str(b) for b in labels],
                                    [float(p) for p in probs]))
        self.timing = {"pre": t["pre"], "infer": t["infer"], "post": (time.perf_counter() - t2) * 1e3}
        self.last_split = {"server": t["server"], "network": t["network"]}
        return preds

    def close(self) -> None:
        self.remote.close()


def remote_model_name(spec: str) -> str:
    """What the server calls a model given as a name or a path: the file's stem for a path."""
    from pathlib import Path

    p = Path(spec)
    return p.stem if p.suffix.lower() == ".onnx" else spec


def open_remote_tasks(url: str, *, stylizer_model: str | None = None, style: int | str | None = 0,
                      strength: float = 1.0, preserve_color: bool = False, classifier_model: str | None = None,
                      top_k: int = 3) -> tuple[RemoteStylizer | None, RemoteClassifier | None]:
    """The stylizer and classifier on the server at ``url`` (either may be None). ``strength`` and
    ``preserve_color`` are applied here to the picture the server returns, as the local stylizer does."""
    stylizer = classifier = None
    try:
        if stylizer_model is not None:
            stylizer = RemoteStylizer(url, remote_model_name(stylizer_model), style=style)
            if float(strength) < 1.0 or preserve_color:
                stylizer = _Blended(stylizer, float(strength), bool(preserve_color))
        if classifier_model:
            classifier = RemoteClassifier(url, remote_model_name(classifier_model), top_k=top_k)
    except BaseException:
        if stylizer is not None:
            stylizer.close()
        raise
    return stylizer, classifier


class _Blended:
    """A remote stylizer whose picture is blended with the frame / given its colours, as locally."""

    def __init__(self, inner: RemoteStylizer, strength: float, keep_color: bool):
        self.inner, self.strength, self.keep_color = inner, strength, keep_color

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        from .processing import blend, preserve_color

        img = self.inner.stylize(frame)
        if self.keep_color:
            img = preserve_color(img, frame)
        return blend(img, frame, self.strength)

    def warmup(self, shape: tuple[int, int] = (480, 640)) -> None:
        self.stylize(np.zeros((*shape, 3), np.uint8))
        self.inner.remote.reset_split()
