"""The soak benchmark's plumbing on a short run: real ``artcam live`` subprocess, RSS sampled, summary parsed."""

from __future__ import annotations

import pytest

from artcam.benchmarks import soak


@pytest.mark.reliability
def test_soak_runs_live_and_reports_memory():
    pytest.importorskip("skimage", reason="the sample source needs scikit-image (the demo extra)")
    res = soak.soak(frames=150, warmup_s=1.0)
    assert res["summary"]["frames"] == 150
    assert res["rss_start_mb"] > 10 and res["rss_end_mb"] > 10 and res["rss_max_mb"] >= res["rss_end_mb"]
    assert abs(res["rss_growth_mb"]) < 200  # a short run: only that the numbers are memory, not the soak's bound
