"""Latency percentiles of a list of samples: shared by the pipeline's statistics and the web viewer's."""

from __future__ import annotations

import numpy as np


def percentiles(values, ps=(50, 90, 99)) -> dict[str, float]:
    if len(values) == 0:
        return {f"p{p}": float("nan") for p in ps}
    arr = np.asarray(values, np.float64)
    return {f"p{p}": float(np.percentile(arr, p)) for p in ps}
