"""Latent walks for generator models: seeded, smooth paths through a GAN's latent space (numpy only).

A walk visits random standard-normal keypoints and moves between them by spherical interpolation.
In high dimensions normal latents sit on a thin shell of radius ~sqrt(d); straight-line interpolation
cuts through the low-density interior (washed-out, average-looking images mid-way), slerp stays on
the shell. Between keypoints the parameter is eased (smoothstep), so the path has no kinks where
segments meet: velocity falls to zero at each keypoint instead of changing direction abruptly.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from .errors import InputError

EASINGS = ("linear", "smooth")


def slerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) along the last axis.

    The direction moves along the great circle between a/|a| and b/|b|; the norm moves linearly
    from |a| to |b| (so two latents of equal norm give points of exactly that norm). ``t`` may be a
    scalar or an array (result shape: t.shape + a.shape[-1:] for 1-D endpoints). Nearly parallel
    endpoints fall back to normalised linear interpolation; exactly opposite ones turn through a
    fixed perpendicular direction.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"slerp endpoints differ in shape: {a.shape} vs {b.shape}")
    t = np.asarray(t, dtype=np.float64)[..., None]
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    if np.any(na == 0) or np.any(nb == 0):
        return (1 - t) * a + t * b  # a zero vector has no direction: plain interpolation
    ua, ub = a / na, b / nb
    cos = np.clip(np.sum(ua * ub, axis=-1, keepdims=True), -1.0, 1.0)
    u = _unit_slerp(ua, ub, cos, t)
    opposite = cos < -1 + 1e-12
    if np.any(opposite):
        # no unique great circle: turn through a fixed perpendicular direction (deterministic)
        e = np.zeros_like(ua)
        e[..., 0] = 1.0
        e = np.where(np.abs(ua[..., :1]) > 0.9, np.roll(e, 1, axis=-1), e)
        perp = e - np.sum(e * ua, axis=-1, keepdims=True) * ua
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        u = np.where(opposite, np.cos(np.pi * t) * ua + np.sin(np.pi * t) * perp, u)
    return ((1 - t) * na + t * nb) * u


def _unit_slerp(ua: np.ndarray, ub: np.ndarray, cos: np.ndarray, t: np.ndarray) -> np.ndarray:
    omega = np.arccos(cos)
    so = np.sin(omega)
    near = so < 1e-6
    safe = np.where(near, 1.0, so)
    u = (np.sin((1 - t) * omega) / safe) * ua + (np.sin(t * omega) / safe) * ub
    lin = (1 - t) * ua + t * ub
    u = np.where(near, lin, u)
    with np.errstate(invalid="ignore", divide="ignore"):  # exactly opposite endpoints: replaced by the caller
        return u / np.linalg.norm(u, axis=-1, keepdims=True)


def _ease(t: float, easing: str) -> float:
    return t if easing == "linear" else t * t * (3 - 2 * t)


def parse_seed(text) -> int:
    """A seed from the command line: a non-negative integer below 2**32, else a clear error."""
    try:
        seed = int(str(text).strip(), 10)
    except ValueError:
        raise InputError(f"seed {text!r} is not a whole number", "pass --seed with an integer, e.g. --seed 42") from None
    if not 0 <= seed < 2**32:
        raise InputError(f"seed {seed} is out of range", "use a seed between 0 and 4294967295")
    return seed


class LatentWalk:
    """An endless iterator of latent vectors (float32, shape (latent_size,)) along a seeded slerp path.

    ``steps_per_segment`` frames go from one keypoint to the next (at 30 FPS, 90 = 3 s per painting).
    With ``n_classes`` > 0, ``step()`` also returns a class-weight vector that blends linearly (same
    easing) between random one-hot keypoints, so a conditional generator drifts between styles; pass
    ``fixed_class`` to stay on one class. The same seed always gives the same sequence.
    """

    def __init__(self, latent_size: int, seed: int = 0, steps_per_segment: int = 90, easing: str = "smooth",
                 n_classes: int = 0, fixed_class: int | None = None, truncation: float = 1.0):
        if int(latent_size) < 1:
            raise InputError(f"latent size {latent_size} must be positive")
        if int(steps_per_segment) < 1:
            raise InputError(f"steps per segment {steps_per_segment} must be at least 1")
        if easing not in EASINGS:
            raise InputError(f"unknown easing {easing!r}", f"use one of {', '.join(EASINGS)}")
        if fixed_class is not None and not 0 <= fixed_class < max(n_classes, 1):
            raise InputError(f"class index {fixed_class} is outside 0..{n_classes - 1}")
        if not truncation > 0:
            raise InputError(f"truncation {truncation} must be positive")
        self.latent_size = int(latent_size)
        self.seed = parse_seed(seed)
        self.steps_per_segment = int(steps_per_segment)
        self.easing = easing
        self.n_classes = int(n_classes)
        self.fixed_class = fixed_class
        self.truncation = float(truncation)
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._a, self._b = self._key(), self._key()
        self._ca, self._cb = self._class_key(), self._class_key()
        self._i = 0

    def _key(self) -> np.ndarray:
        return self._rng.standard_normal(self.latent_size) * self.truncation

    def _class_key(self) -> np.ndarray | None:
        if self.n_classes <= 0:
            return None
        k = self.fixed_class if self.fixed_class is not None else int(self._rng.integers(self.n_classes))
        return np.eye(self.n_classes)[k]

    def step(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The next (z, class weights or None)."""
        t = _ease(self._i / self.steps_per_segment, self.easing)
        z = slerp(self._a, self._b, t).astype(np.float32)
        y = None if self._ca is None else ((1 - t) * self._ca + t * self._cb).astype(np.float32)
        self._i += 1
        if self._i >= self.steps_per_segment:
            self._i = 0
            self._a, self._b = self._b, self._key()
            self._ca, self._cb = self._cb, self._class_key()
        return z, y

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        return self.step()[0]

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` latents stacked as (n, latent_size) float32."""
        return np.stack([next(self) for _ in range(n)])


def make_grid(images: np.ndarray, ncols: int, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images into one image, ``ncols`` per row, ``pad`` pixels apart."""
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise InputError(f"make_grid needs a non-empty (N, H, W, C) array, got shape {images.shape}")
    n, h, w, c = images.shape
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad, c), pad_value, images.dtype)
    for i, im in enumerate(images):
        r, q = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y : y + h, x : x + w] = im
    return out
