"""Whether a stylized picture keeps the photo's colour regions (numpy only: the contact sheet uses it too).

The nano stylizers came out two-tone: they recoloured by luminance alone, so the photo's blue sky and
orange suit got the same paint. The measure: regress the photo's chroma, pooled on a coarse grid (regions,
not texture), on the output's pooled colour; what the regression misses (1 - R^2) is lost. Any invertible
recolouring keeps everything, so a style may change every hue; it only has to keep regions apart. A ridge
term keeps a faint tint from passing for a region's colour. ``perceptual.chroma_lost`` is the same in
torch, for the training term.

Second, whether the regions stay flat: the nets filled the photo's flat regions with ripples (parallel to
nearby edges) where the photo, and the peer's flattest styles, have flat colour. ``ripple`` is the
output's gradient where the photo has none; ``perceptual.flat_ripple`` is its torch twin.
"""

from __future__ import annotations

import cv2
import numpy as np

CELLS = 12  # the pooled grid is CELLS x CELLS
RIDGE = 0.05 ** 2  # output colour spreads below about 13/255 cannot carry a region
FLOOR = 1e-4  # per-cell chroma variance added to the denominator: grey photos have no regions to keep
EDGE = 0.03  # photo gradient (0-1 per px) at which the output's own gradient counts e^-1 as much as in flat parts


def chroma(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (..., 2) opponent chroma: R - G and (R + G) / 2 - B."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([r - g, 0.5 * (r + g) - b], -1)


def chroma_lost(output: np.ndarray, photo: np.ndarray) -> float:
    """Share (0-1) of the photo's regional chroma the output's colours do not tell; (H, W, 3) RGB in [0, 1]."""
    def pooled(x: np.ndarray) -> np.ndarray:
        p = cv2.resize(np.asarray(x, np.float32), (CELLS, CELLS), interpolation=cv2.INTER_AREA).reshape(-1, 3)
        return p.astype(np.float64) - p.mean(0)

    o, c = pooled(output), pooled(photo)
    y = chroma(c)
    beta = np.linalg.solve(o.T @ o + np.eye(3) * RIDGE * len(o), o.T @ y)
    res = y - o @ beta
    return float((res ** 2).sum() / ((y ** 2).sum() + len(o) * FLOOR))


def gradient(x: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H-1, W-1): |horizontal| + |vertical| difference, mean over channels."""
    x = np.asarray(x, np.float32)
    return (np.abs(x[:-1, 1:] - x[:-1, :-1]) + np.abs(x[1:, :-1] - x[:-1, :-1])).mean(-1)


def ripple(output: np.ndarray, photo: np.ndarray) -> float:
    """Mean gradient of the output (0-1 per px) weighted by exp(-photo gradient / EDGE): texture painted
    where the photo is flat; (H, W, 3) RGB in [0, 1], same size. The photo's own is ``ripple(photo, photo)``."""
    w = np.exp(-gradient(photo) / EDGE)
    return float((w * gradient(output)).sum() / w.sum())
