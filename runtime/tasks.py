"""The three jobs a model does on a frame: classify, stylize, generate.

Each task wraps a :class:`LoadedModel`, does its own pre/post-processing and records how long
each stage took in ``timing`` (milliseconds), which the pipeline and the benchmarks read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from . import limits
from .errors import InputError
from .guided import UPSAMPLE_MODES, guided_upsample
from .loading import LoadedModel
from .processing import ImagePostprocessor, ImagePreprocessor, blend, fit_size, preserve_color, softmax
from .zoo import style_hint


@dataclass
class Prediction:
    head: str
    labels: list[str]
    probs: list[float]

    def as_dict(self) -> dict:
        return {"head": self.head, "top": [{"label": lab, "p": round(p, 5)} for lab, p in zip(self.labels, self.probs)]}


class _Task:
    def __init__(self, model: LoadedModel):
        self.model = model
        self.meta = model.meta
        self.runner = model.runner
        self.timing = {"pre": 0.0, "infer": 0.0, "post": 0.0}

    def close(self) -> None:
        self.model.close()


class Classifier(_Task):
    """Softmax top-k for every labelled head of one forward pass."""

    def __init__(self, model: LoadedModel, top_k: int = 3):
        super().__init__(model)
        self.top_k = top_k
        self.pre = ImagePreprocessor(self.meta.image)

    def warmup(self) -> None:
        self.classify(np.zeros((240, 320, 3), np.uint8))

    def classify(self, frame: np.ndarray) -> list[Prediction]:
        t0 = time.perf_counter()
        x = self.pre(frame)
        t1 = time.perf_counter()
        out = self.runner.infer({self.meta.image.name: x})
        t2 = time.perf_counter()
        preds = []
        for h in self.meta.heads:
            v = out[h.name].reshape(-1)
            p = softmax(v) if h.kind == "logits" else v
            if len(p) != len(h.labels):
                raise InputError(f"output {h.name!r} has {len(p)} values but {len(h.labels)} labels")
            k = min(self.top_k, len(p))
            idx = np.argpartition(-p, k - 1)[:k]
            idx = idx[np.argsort(-p[idx])]
            preds.append(Prediction(h.head or h.name, [h.labels[i] for i in idx], [float(p[i]) for i in idx]))
        t3 = time.perf_counter()
        self.timing = {"pre": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "post": (t3 - t2) * 1e3}
        return preds


class Stylizer(_Task):
    """Stylize frames of any size: optional resize, pad to the net's multiple, crop back, blend.

    ``size``: stylize at this longer side; ``upsample``: how a smaller result comes back to the frame's
    size, ``resize`` (bilinear) or ``guided`` (bicubic plus the frame's full-resolution detail, see
    :mod:`artcam.runtime.guided`).
    """

    def __init__(
        self,
        model: LoadedModel,
        style: int | str | np.ndarray = 0,
        strength: float = 1.0,
        keep_color: bool = False,
        size: int | None = None,
        upsample: str = "resize",
    ):
        super().__init__(model)
        if upsample not in UPSAMPLE_MODES:
            raise InputError(f"unknown upsampling {upsample!r}", f"use one of {', '.join(UPSAMPLE_MODES)}")
        self.upsample = upsample
        self.pre = ImagePreprocessor(self.meta.image)
        self.post = ImagePostprocessor(self.meta.output)
        self.strength = self.checked_strength(strength)
        self.keep_color = keep_color
        if self.meta.image.fixed_size is None:  # a --size past the model or the memory budget: before any frame
            limits.check_stylize_size(size, self.meta.image.min_size, self.meta.image.max_size)
        self.size = size
        self.styles = list(self.meta.styles)
        self.weights = None
        if self.meta.style is not None:
            self.weights = np.zeros((1, len(self.styles)), np.float32)
            self.set_style(style)

    @property
    def style_name(self) -> str:
        if self.weights is None:
            return self.meta.name
        i = int(self.weights.argmax())
        return self.styles[i] if np.count_nonzero(self.weights) == 1 else "mix"

    @staticmethod
    def checked_strength(strength: float, what: str = "--strength") -> float:
        """``strength`` as a float when it is a finite number in 0..1, else :class:`InputError`."""
        if not (isinstance(strength, (int, float, np.floating)) and 0.0 <= strength <= 1.0):
            raise InputError(f"{what} {strength} is outside 0..1")  # NaN fails the comparison too
        return float(strength)

    def set_style(self, style: int | str | np.ndarray) -> None:
        """A style index or name, or a weight vector that blends styles."""
        weights = self.style_weights(style)
        if weights is not None:
            self.weights[:] = weights

    def style_weights(self, style: int | str | np.ndarray, what: str = "--style") -> np.ndarray | None:
        """The (1, n_styles) weight vector ``set_style(style)`` would set, checked (:class:`InputError`)
        but not applied, so a caller on another thread can validate now and apply on the next frame;
        None for a model with one baked-in style. ``what`` names the option in messages."""
        if self.weights is None:
            if style not in (0, None, self.meta.name):
                raise InputError(f"model {self.meta.name!r} holds one style; it has no style input")
            return None
        n = len(self.styles)
        if isinstance(style, str) and ("," in style or ":" in style):
            style = self._parse_mix(style, what)
        if isinstance(style, str):
            if style.isdigit():
                style = int(style)
            elif style in self.styles:
                style = self.styles.index(style)
            else:
                raise InputError(f"unknown style {style!r}", style_hint(style, self.styles))
        w = np.zeros((1, n), np.float32)
        if isinstance(style, (int, np.integer)):
            if not 0 <= style < n:
                raise InputError(f"style index {style} is out of range 0..{n - 1}")
            w[0, style] = 1
            return w
        given = np.asarray(style, np.float64).reshape(-1)
        if given.size != n:
            raise InputError(f"style weights have {given.size} values, the model has {n} styles")
        self._check_weights(given, what)
        w[0] = given
        return w

    MAX_STYLE_WEIGHT = 10.0  # 1 is a style at its trained strength; far above, the output saturates

    def _check_weights(self, w: np.ndarray, what: str = "--style") -> None:
        """Finite, not negative, not huge, and at least one style with a positive weight."""
        def named(i: int) -> str:
            return f"{self.styles[i]!r}" if i < len(self.styles) else f"#{i}"

        example = f"{self.styles[0]}:0.7,{self.styles[-1]}:0.3"
        hint = f"give weights in 0..{self.MAX_STYLE_WEIGHT:g}, e.g. " + (f"{what} {example}" if what.startswith("--") else example)
        bad = np.flatnonzero(~np.isfinite(w))
        if bad.size:
            raise InputError(f"{what} weight {w[bad[0]]} for {named(bad[0])} is not a finite number", hint)
        bad = np.flatnonzero(w < 0)
        if bad.size:
            raise InputError(f"{what} weight {w[bad[0]]:g} for {named(bad[0])} is negative", hint)
        bad = np.flatnonzero(w > self.MAX_STYLE_WEIGHT)
        if bad.size:
            raise InputError(f"{what} weight {w[bad[0]]:g} for {named(bad[0])} is above {self.MAX_STYLE_WEIGHT:g}", hint)
        if w.sum() > self.MAX_STYLE_WEIGHT:
            raise InputError(f"{what} weights add up to {w.sum():g}, above {self.MAX_STYLE_WEIGHT:g}", hint)
        if not (w > 0).any():
            raise InputError(f"{what} weights are all zero: at least one style needs a positive weight", hint)

    def _parse_mix(self, text: str, what: str = "--style") -> np.ndarray:
        """``starry_night:0.7,great_wave:0.3`` (names or indices) -> a weight vector."""
        w = np.zeros(len(self.styles), np.float32)
        for part in text.split(","):
            name, _, weight = part.strip().partition(":")
            try:
                value = float(weight) if weight else 1.0
            except ValueError:
                raise InputError(f"style weight {weight!r} in {text!r} is not a number") from None
            if name.isdigit() and int(name) < len(self.styles):
                idx = int(name)
            elif name in self.styles:
                idx = self.styles.index(name)
            else:
                raise InputError(f"unknown style {name!r}", style_hint(name, self.styles))
            w[idx] += value
            if not np.isfinite(value) or value < 0:  # checked before += hides it (inf + -inf, -1 + 2)
                self._check_weights(np.where(np.arange(len(w)) == idx, value, 0.0), what)
        return w

    def step_style(self, delta: int) -> None:
        if self.weights is not None:
            self.set_style((int(self.weights.argmax()) + delta) % len(self.styles))

    def warmup(self, shape: tuple[int, int] = (480, 640)) -> None:
        self.stylize(np.zeros((*shape, 3), np.uint8))

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        h, w = frame.shape[:2]
        work = frame
        th, tw = fit_size(h, w, self.size)
        limits.check_stylize_frame(th, tw)
        if (th, tw) != (h, w):
            work = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA if th < h else cv2.INTER_LINEAR)
        x = self.pre(work)
        feeds = {self.meta.image.name: x}
        if self.weights is not None:
            feeds[self.meta.style.name] = self.weights
        t1 = time.perf_counter()
        out = self.runner.infer(feeds)[self.meta.output.name]
        t2 = time.perf_counter()
        img = self.post(out, crop=(th, tw))
        if (th, tw) != (h, w):
            if self.upsample == "guided" and th < h:
                img = guided_upsample(img, work, frame)
            else:
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.keep_color:
            img = preserve_color(img, frame)
        img = blend(img, frame, self.strength)
        t3 = time.perf_counter()
        self.timing = {"pre": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "post": (t3 - t2) * 1e3}
        return img


class Generator(_Task):
    """Latent vector (and optional class) -> image."""

    def __init__(self, model: LoadedModel):
        super().__init__(model)
        self.post = ImagePostprocessor(self.meta.output)
        self.latent_size = self.meta.latent.size
        self.labels = list(self.meta.classes.labels) if self.meta.classes else []

    def sample_latents(self, n: int, seed: int | None = None) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, self.latent_size)).astype(np.float32)

    def class_vector(self, n: int, cls: int | str | np.ndarray | None) -> np.ndarray | None:
        """One-hot rows for a class index or name; a weight vector (a blend of classes) passes through."""
        if not self.labels:
            if cls is not None:
                raise InputError(f"model {self.meta.name!r} is not class-conditional; drop --class")
            return None
        if isinstance(cls, np.ndarray):
            w = np.asarray(cls, np.float32).reshape(-1, len(self.labels)) if cls.size % len(self.labels) == 0 else None
            if w is None:
                raise InputError(f"class weights have {cls.size} values; the model has {len(self.labels)} classes")
            return np.ascontiguousarray(np.broadcast_to(w, (n, len(self.labels))))
        if cls is None:
            cls = 0
        if isinstance(cls, str):
            if cls not in self.labels:
                raise InputError(f"unknown class {cls!r}", f"this model has: {', '.join(self.labels)}")
            cls = self.labels.index(cls)
        onehot = np.zeros((n, len(self.labels)), np.float32)
        onehot[:, cls] = 1
        return onehot

    def generate(self, z: np.ndarray, cls: int | str | np.ndarray | None = None) -> list[np.ndarray]:
        """One BGR uint8 image per latent row."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise InputError(f"latent has shape {z.shape}; this generator wants (N, {self.latent_size})")
        c = self.class_vector(len(z), cls)
        t1 = time.perf_counter()
        imgs, infer_s = [], 0.0
        for i in range(0, len(z), limits.GENERATE_BATCH):  # bounded activations whatever the count
            feeds = {self.meta.latent.name: z[i:i + limits.GENERATE_BATCH]}
            if c is not None:
                feeds[self.meta.classes.name] = c[i:i + limits.GENERATE_BATCH]
            t = time.perf_counter()
            out = self.runner.infer(feeds)[self.meta.output.name]
            infer_s += time.perf_counter() - t
            imgs += [self.post(out[k]) for k in range(len(out))]
        t2 = t1 + infer_s
        self.timing = {"pre": 0.0, "infer": (t2 - t1) * 1e3, "post": (time.perf_counter() - t2) * 1e3}
        return imgs
