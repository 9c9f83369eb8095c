"""Latency statistics the way trtexec and MLPerf report them, and ratio statistics for A/B runs.

Percentiles use numpy's default (linear interpolation between order statistics), so a number
here can be reproduced from the raw samples stored in a benchmark's JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from artcam.runtime.errors import ArtcamError

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)


def pkey(p: float) -> str:
    """Key of a percentile in summaries: 90 -> "p90", 99.9 -> "p99.9"."""
    return "p" + format(float(p), "g")


def parse_percentiles(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"50,90,99.9"`` -> (50.0, 90.0, 99.9); each strictly between 0 and 100."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        s = str(item).strip()
        if not s:
            continue
        try:
            p = float(s)
        except ValueError:
            raise ArtcamError(f"percentile {s!r} is not a number", "use e.g. --percentiles 50,90,95,99") from None
        if not 0.0 < p < 100.0 or math.isnan(p):
            raise ArtcamError(f"percentile {s} is outside (0, 100)", "use e.g. --percentiles 50,90,95,99")
        out.append(p)
    if not out:
        raise ArtcamError("no percentiles given", "use e.g. --percentiles 50,90,95,99")
    return tuple(sorted(set(out)))


def _clean(samples: Iterable[float]) -> np.ndarray:
    a = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def summarize(samples: Iterable[float], percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict | None:
    """min, mean, median, std, requested percentiles and max of ``samples`` (NaN/inf dropped).

    None when there is no finite sample, so reports can print "n/a" instead of a made-up zero.
    """
    a = _clean(samples)
    if a.size == 0:
        return None
    d = {
        "count": int(a.size),
        "min": float(a.min()),
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "max": float(a.max()),
    }
    for p, v in zip(percentiles, np.percentile(a, list(percentiles))):
        d[pkey(p)] = float(v)
    return d


def rel_iqr(samples: Iterable[float]) -> float:
    """Interquartile range divided by the median: a robust, unit-free spread."""
    a = _clean(samples)
    if a.size < 2:
        return float("nan")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return float((q3 - q1) / med) if med else float("nan")


def ratio_summary(ratios: Iterable[float]) -> dict | None:
    """Median and quartiles of per-round ratios (B/A measured in the same round)."""
    a = _clean(ratios)
    if a.size == 0:
        return None
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(a.min()), "max": float(a.max()), "rounds": int(a.size)}


def bootstrap_ratio_ci(
    old: Iterable[float], new: Iterable[float], conf: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float] | None:
    """Ratio of medians new/old with a bootstrap confidence interval: (ratio, low, high).

    Resamples each run's samples independently; the interval reflects the measured noise of both.
    """
    a, b = _clean(old), _clean(new)
    if a.size == 0 or b.size == 0:
        return None
    ratio = float(np.median(b) / np.median(a))
    if a.size < 2 or b.size < 2:
        return ratio, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # Bound the work: large sample sets are subsampled for the resampling only.
    a_ = a if a.size <= 4000 else rng.choice(a, 4000, replace=False)
    b_ = b if b.size <= 4000 else rng.choice(b, 4000, replace=False)
    ma = np.median(a_[rng.integers(0, a_.size, (n_boot, a_.size))], axis=1)
    mb = np.median(b_[rng.integers(0, b_.size, (n_boot, b_.size))], axis=1)
    r = mb / ma
    lo, hi = np.percentile(r, [(1 - conf) / 2 * 100, (1 + conf) / 2 * 100])
    return ratio, float(lo), float(hi)


def fmt_ms(v: float | None, width: int = 0) -> str:
    """Milliseconds with 3 significant-ish digits; "n/a" for missing values."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        s = "n/a"
    elif v >= 100:
        s = f"{v:.0f}"
    elif v >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}"
    return s.rjust(width) if width else s
