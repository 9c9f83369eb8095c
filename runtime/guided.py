"""Guided upsampling: stylize at a lower resolution, give back the camera frame's full-resolution detail.

A stylizer run at half size and scaled up with a plain resize looks soft: every edge and stroke is
twice as wide. Here the full-resolution camera frame guides the scale-up, after the fast guided
filter (He and Sun 2015, "Fast Guided Filter"): at low resolution a local linear model
``stylized ~= a * luminance + b`` is fitted per output channel in a ``(2r+1)^2`` window (box
filters), and its gain ``a`` says how strongly the stylized picture follows the photo's light and
dark there. At full resolution::

    out = bicubic(stylized) + resize(a) * (grey_full - bicubic(grey_low))

The second term is the detail the downscale removed from the photo (edges, fine texture), added
with the local gain of the style, so it comes out in the style's colours. Where the style ignores
the photo (a flat painted sky, a stroke texture of its own) ``a`` is near 0 and nothing is added;
the strokes themselves are the stylized picture's, scaled up bicubically, never blurred further (no
smoothing of the stylized picture, unlike plain guided filtering). ``a`` is clipped, so a step edge
cannot overshoot into a halo.

What it cannot do: give back texture the stylizer paints at its own pixel scale. Run at half size,
the net paints strokes twice as large; the camera frame has no strokes to lend (measured with the
contact sheet's fine-detail figure: ``python -m artcam.benchmarks.hd_detail``).

numpy + OpenCV only; float32; buffers are allocated per call.
"""

from __future__ import annotations

import cv2
import numpy as np

UPSAMPLE_MODES = ("resize", "guided")  # how a stylizer run below the frame size scales back up


def local_gain(guide: np.ndarray, target: np.ndarray, radius: int = 2, eps: float = 1e-3,
               max_gain: float = 2.0) -> np.ndarray:
    """The guided filter's ``a``: per pixel and channel, the least-squares slope of ``target`` (HxWxC,
    0..255) against ``guide`` (HxW, 0..1) in a box of ``2*radius+1`` pixels, regularised by ``eps``
    (on the guide's 0..1 scale: flat regions give a gain near 0), box-averaged, clipped to
    ``+-max_gain * 255`` per unit of guide."""
    k = (2 * radius + 1, 2 * radius + 1)
    mean_i = cv2.blur(guide, k)
    var_i = cv2.blur(guide * guide, k) - mean_i * mean_i
    mean_p = cv2.blur(target, k)
    cov = cv2.blur(target * guide[..., None], k) - mean_p * mean_i[..., None]
    a = cov / (var_i[..., None] + eps)
    a = cv2.blur(a, k)
    lim = max_gain * 255.0
    return np.clip(a, -lim, lim, out=a)


def guided_upsample(stylized_low: np.ndarray, frame_low: np.ndarray, frame: np.ndarray,
                    radius: int = 2, eps: float = 1e-3, max_gain: float = 2.0, gain_shrink: int = 2) -> np.ndarray:
    """Scale ``stylized_low`` (BGR uint8, the stylizer's output for ``frame_low``) up to ``frame``'s
    size (bicubic), adding ``frame``'s full-resolution detail through the style's local gain (module
    docstring). The gain, a smooth field, is fitted at 1/``gain_shrink`` of the low resolution (a
    ``radius`` there covers ``gain_shrink`` times as many low-resolution pixels); the full-resolution
    work is in 16-bit fixed point: two resizes, a grey conversion, a multiply and a saturating add."""
    h, w = frame.shape[:2]
    grey_low = cv2.cvtColor(frame_low, cv2.COLOR_BGR2GRAY)
    g, p = grey_low, stylized_low
    if gain_shrink > 1:
        small = (max(1, frame_low.shape[1] // gain_shrink), max(1, frame_low.shape[0] // gain_shrink))
        g = cv2.resize(grey_low, small, interpolation=cv2.INTER_AREA)
        p = cv2.resize(stylized_low, small, interpolation=cv2.INTER_AREA)
    a = local_gain(g.astype(np.float32) * np.float32(1 / 255), p.astype(np.float32), radius, eps, max_gain)
    gain_q7 = (a * np.float32(128 / 255)).astype(np.int16)  # per grey level, 7 fractional bits: |a| <= 2
    up = cv2.resize(stylized_low, (w, h), interpolation=cv2.INTER_CUBIC)
    detail = cv2.subtract(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
                          cv2.resize(grey_low, (w, h), interpolation=cv2.INTER_CUBIC), dtype=cv2.CV_16S)
    corr = cv2.multiply(cv2.resize(gain_q7, (w, h), interpolation=cv2.INTER_LINEAR), cv2.merge([detail] * 3),
                        scale=1 / 128, dtype=cv2.CV_16S)
    return cv2.add(up, corr, dtype=cv2.CV_8U)  # saturating: no wrap-around at 0 and 255
