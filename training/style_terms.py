"""The stylizer's loss as data: each term a small object with a name, a weight and what it needs.

A recipe (``training/recipes/*.toml``) lists the terms with their weights and options; only terms with a
non-zero weight are built, and the training loop computes only what the built terms need (the loss
network's features of the output, of the photo, the teacher's picture, a moved second view).

Terms:
- ``content``: feature MSE between output and photo at the content taps (Johnson et al. 2016).
- ``style``: Gram error against the painting at the style taps, each tap's error divided by the
  painting's Gram mean square (``perceptual.StyleGrams``).
- ``tv``: L1 total variation, a small smoothness prior.
- ``stability``: the output of a moved, relit, noisy second view should move with it and nothing else
  (temporal stability without optical flow at run time).
- ``distill``: feature MSE between the output and the teacher's picture of the same crop at several
  taps, each tap divided by the teacher's feature mean square. Feature space, not pixels: pixel L1
  averages the teacher's strokes into blur. But feature space barely sees colour (a 50% desaturated
  teacher picture costs 0.18 there, a 2x blurred one 1.0), so a student short of capacity gives up
  colour first; option ``colour`` adds L1 between the two pictures averaged over ``colour_scale`` pixel
  blocks: it pins the teacher's colours and leaves the strokes to the feature taps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F

from artcam.training.common import TrainingError
from artcam.training.perceptual import StyleGrams, total_variation


@dataclass
class Views:
    """What one training step offers the terms; the loop fills only what some term needs."""

    output: torch.Tensor  # (N, 3, H, W) the net's picture of ``content``
    content: torch.Tensor  # the photo crops
    style: torch.Tensor  # (N, S) style weights
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # loss-net taps of ``output``
    content_features: dict[str, torch.Tensor] = field(default_factory=dict)
    teacher_features: dict[str, torch.Tensor] = field(default_factory=dict)
    teacher_output: torch.Tensor | None = None  # the teacher's picture of ``content``
    moved_output: torch.Tensor | None = None  # the net's picture of the moved view
    shift: tuple[int, int] = (0, 0)  # how far the moved view moved (dy, dx)


class Term:
    """A weighted loss term. ``taps``: loss-net taps of the output it reads; ``needs``: other views."""

    name: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}  # option name -> default, for recipe validation
    needs: ClassVar[frozenset[str]] = frozenset()  # of: content_features, teacher, moved

    def __init__(self, weight: float, **options: Any):
        self.weight = float(weight)
        self.opts = {**self.options, **options}

    @property
    def taps(self) -> dict[str, float]:
        return {}

    @property
    def content_taps(self) -> list[str]:
        return []

    def __call__(self, v: Views) -> torch.Tensor:
        raise NotImplementedError


TERMS: dict[str, type[Term]] = {}


def register(cls: type[Term]) -> type[Term]:
    TERMS[cls.name] = cls
    return cls


@register
class Content(Term):
    name = "content"
    options = {"layers": {}}  # empty: the loss network's default content taps
    needs = frozenset({"content_features"})

    @property
    def taps(self) -> dict[str, float]:
        return dict(self.opts["layers"])

    @property
    def content_taps(self) -> list[str]:
        return list(self.opts["layers"])

    def __call__(self, v: Views) -> torch.Tensor:
        return sum(w * F.mse_loss(v.features[k].float(), v.content_features[k].float())
                   for k, w in self.taps.items())


@register
class Style(Term):
    name = "style"
    options = {"layers": {}}  # empty: the loss network's default style taps
    grams: StyleGrams | None = None  # set by the loop once the paintings are loaded

    @property
    def taps(self) -> dict[str, float]:
        return dict(self.opts["layers"])

    def __call__(self, v: Views) -> torch.Tensor:
        return self.grams.error(v.features, v.style, self.taps).mean()


@register
class TotalVariation(Term):
    name = "tv"

    def __call__(self, v: Views) -> torch.Tensor:
        return total_variation(v.output.float())


@register
class Stability(Term):
    name = "stability"
    needs = frozenset({"moved"})

    def __call__(self, v: Views) -> torch.Tensor:
        """Mean squared change of the output where the two views overlap (the moved view = shifted by ``shift``)."""
        dy, dx = v.shift
        a, b = v.output, v.moved_output
        h, w = a.shape[-2:]
        a = a[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
        b = b[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        return F.mse_loss(a.float(), b.float())


@register
class Distill(Term):
    name = "distill"
    options = {"layers": {"stem": 1.0, "block0": 1.0, "block2": 1.0, "block4": 1.0}, "teacher": "",
               "colour": 0.0, "colour_scale": 4}
    needs = frozenset({"teacher"})

    @property
    def taps(self) -> dict[str, float]:
        return dict(self.opts["layers"])

    def __call__(self, v: Views) -> torch.Tensor:
        total = 0.0
        for k, w in self.taps.items():
            t = v.teacher_features[k].float()
            total = total + w * F.mse_loss(v.features[k].float(), t) / t.pow(2).mean().clamp_min(1e-12)
        if self.opts["colour"]:
            s = int(self.opts["colour_scale"])
            low = F.avg_pool2d(v.output.float(), s) - F.avg_pool2d(v.teacher_output.float(), s)
            total = total + self.opts["colour"] * low.abs().mean()
        return total


def build_terms(spec: Mapping[str, Mapping[str, Any]], defaults: Mapping[str, Mapping[str, float]] | None = None
                ) -> list[Term]:
    """Terms from ``{name: {"weight": w, option: value}}``; weight-0 terms are left out.

    ``defaults``: ``{"content": taps, "style": taps}`` of the loss network, for terms that name no layers.
    """
    terms = []
    for name, opts in spec.items():
        if name not in TERMS:
            raise TrainingError(f"unknown loss term {name!r}", f"known terms: {', '.join(TERMS)}")
        cls = TERMS[name]
        opts = dict(opts)
        weight = opts.pop("weight", 0.0)
        bad = set(opts) - set(cls.options)
        if bad:
            known = ", ".join(["weight", *cls.options]) or "weight"
            raise TrainingError(f"unknown option(s) {', '.join(sorted(bad))} for loss term {name!r}",
                                f"known: {known}")
        if not isinstance(weight, (int, float)) or not weight == weight or weight < 0:
            raise TrainingError(f"loss term {name!r} has weight {weight!r}", "use a finite number >= 0")
        if weight == 0:
            continue
        if "layers" in cls.options and not opts.get("layers") and defaults and name in defaults:
            opts["layers"] = dict(defaults[name])
        terms.append(cls(weight, **opts))
    if not terms:
        raise TrainingError("the recipe has no loss term with a non-zero weight", f"set a weight for one of: {', '.join(TERMS)}")
    return terms


def weighted_sum(terms: list[Term], v: Views) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    values = {t.name: t(v) for t in terms}
    return sum(t.weight * values[t.name] for t in terms), values

