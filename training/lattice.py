"""The block grid a strided stylizer can leave: spectral power on the lines at multiples of 1/period
cycles per pixel, as a share of all power (numpy only: the contact sheet uses it too).

stylizer_nano works at 1/8 resolution and paints each 4x4 block of output pixels from one feature
vector; trained with Gram losses it learned a texture that repeats on that grid (version 5: about 10x
the photos' share, strongest at 1/4 cycle per pixel; the peer about 1.2x), which reads as fine hatching
anchored to the screen, not to the scene. Period 8 covers the 4-px and the 8-px grid.
"""

from __future__ import annotations

import numpy as np


def lattice_mask(h: int, w: int, period: int = 8, width: int = 1) -> np.ndarray:
    """Boolean (h, w // 2 + 1) mask of an ``rfft2`` spectrum: rows and columns within ``width`` bins of
    k * size / period (k = 1 .. period - 1), the frequencies a pattern repeating every ``period`` px has."""
    mask = np.zeros((h, w // 2 + 1), bool)
    for k in range(1, period):
        r = round(k * h / period)
        mask[max(r - width, 1):r + width + 1, :] = True
        c = round(k * w / period)
        if c <= w // 2:
            mask[:, max(c - width, 1):c + width + 1] = True
    return mask


def lattice_energy(gray: np.ndarray, period: int = 8) -> float:
    """Share (0-1) of the mean-free luminance power on the lattice lines; natural photos are near 0.002-0.005."""
    g = np.asarray(gray, np.float64)
    p = np.abs(np.fft.rfft2(g - g.mean())) ** 2
    return float(p[lattice_mask(*g.shape, period)].sum() / max(p.sum(), 1e-12))
