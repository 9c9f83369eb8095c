"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GANs trained on few images.

The same random transforms are applied to real and generated images before D sees them, and
gradients flow through them to G, so D cannot memorise the small training set while G is still
pushed towards un-augmented images. Policies: color (brightness, saturation, contrast),
translation (shift by up to 1/8 of the side, zero fill), cutout (a zeroed square of half the side).
Inputs are (N, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

POLICIES = ("color", "translation", "cutout")


def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, dtype=x.dtype, device=x.device)


def color(x: torch.Tensor) -> torch.Tensor:
    x = x + (_rand(x, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (_rand(x, 1, 1, 1) + 0.5) + mean  # contrast
    return x


def _shifted(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Per-sample integer shift with zero fill, as a gather (differentiable in x)."""
    n, c, h, w = x.shape
    ys = torch.arange(h, device=x.device)[None, :] - dy[:, None]  # (N, H) source rows
    xs = torch.arange(w, device=x.device)[None, :] - dx[:, None]  # (N, W) source cols
    valid = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
    ys, xs = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
    flat = (ys[:, :, None] * w + xs[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, flat).reshape(n, c, h, w)
    return out * valid[:, None].to(x.dtype)


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n,), device=x.device)
    return _shifted(x, dy, dx)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a ch x cw square per sample; its top-left corner may lie off the image (clipped square)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(-(ch // 2), h - ch // 2 + 1, (n, 1, 1), device=x.device)
    left = torch.randint(-(cw // 2), w - cw // 2 + 1, (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device)[None, :, None]
    gx = torch.arange(w, device=x.device)[None, None, :]
    inside = (gy >= top) & (gy < top + ch) & (gx >= left) & (gx < left + cw)
    return x * (~inside)[:, None].to(x.dtype)


_FUNCS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout,
}


def parse_policy(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'); '' or 'none' -> ()."""
    if not text:
        return ()
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if items == ["none"]:
        return ()
    bad = [t for t in items if t not in _FUNCS]
    if bad:
        raise ValueError(f"unknown DiffAugment policy {bad}; choose from {', '.join(POLICIES)}")
    return tuple(items)


def diff_augment(x: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    for name in policy:
        x = _FUNCS[name](x)
    return x.contiguous()
