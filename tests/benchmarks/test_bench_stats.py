"""Benchmark statistics, the report schema and the slow-down detector (pure numpy, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artcam.benchmarks import compare, report, stats
from artcam.runtime.errors import ArtcamError


def test_summarize_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.lognormal(1.0, 0.4, 997)
    ps = (50, 90, 95, 99, 99.9)
    s = stats.summarize(x, ps)
    assert s["count"] == 997
    assert s["min"] == pytest.approx(x.min()) and s["max"] == pytest.approx(x.max())
    assert s["mean"] == pytest.approx(x.mean()) and s["median"] == pytest.approx(np.median(x))
    assert s["std"] == pytest.approx(x.std(ddof=1))
    for p in ps:
        assert s[stats.pkey(p)] == pytest.approx(np.percentile(x, p), rel=1e-12)
    assert "p99.9" in s and "p90" in s


def test_summarize_drops_nan_and_reports_nothing_for_no_data():
    s = stats.summarize([1.0, float("nan"), 3.0, float("inf")], (50,))
    assert s["count"] == 2 and s["median"] == 2.0
    assert stats.summarize([], (50,)) is None
    assert stats.summarize([float("nan")] * 3) is None


def test_parse_percentiles():
    assert stats.parse_percentiles("99, 50,90,90") == (50.0, 90.0, 99.0)
    for bad in ("0,50", "100", "abc", ""):
        with pytest.raises(ArtcamError):
            stats.parse_percentiles(bad)


def test_ratio_summary_is_median_and_quartiles():
    r = stats.ratio_summary([1.0, 2.0, 3.0, 4.0, 5.0])
    assert r["median"] == 3.0 and r["q1"] == 2.0 and r["q3"] == 4.0 and r["iqr"] == 2.0 and r["rounds"] == 5


def _doc(samples: dict[str, np.ndarray]) -> dict:
    results = []
    for cid, x in samples.items():
        results.append({"id": cid, "status": "ok", "samples_ms": list(map(float, x)),
                        "latency_ms": stats.summarize(x)})
    return report.new_document("model", {"percentiles": [50, 90]}, results, env={})


def test_compare_flags_a_slowdown_and_not_noise():
    def run(scale, seed):
        r = np.random.default_rng(seed)
        return 10.0 * scale * r.lognormal(0.0, 0.15, 300)

    old = _doc({"a": run(1.0, 1), "b": run(1.0, 2), "c": run(1.0, 3)})
    new = _doc({"a": run(1.0, 11), "b": run(1.25, 12), "c": run(0.7, 13)})
    d = {x.id: x for x in compare.compare(old, new, threshold=0.05)}
    assert d["a"].verdict == "same", d["a"]  # same distribution, other seed: noise only
    assert d["b"].verdict == "slower" and d["b"].ratio == pytest.approx(1.25, rel=0.1)
    assert d["b"].low > 1.05
    assert d["c"].verdict == "faster"
    assert [x.id for x in compare.regressions(list(d.values()))] == ["b"]
    text = compare.table(list(d.values()))
    assert "SLOWER" in text and "faster" in text


def test_compare_noisy_small_difference_is_not_flagged():
    # 3% slower but very noisy (rel. spread ~50%): the interval straddles the threshold.
    r = np.random.default_rng(5)
    old = _doc({"x": 10 * r.lognormal(0, 0.5, 60)})
    new = _doc({"x": 10.3 * r.lognormal(0, 0.5, 60)})
    (d,) = compare.compare(old, new)
    assert d.verdict == "same"


def test_compare_reports_failures_and_new_cases():
    old = _doc({"a": np.full(10, 5.0)})
    new = report.new_document("model", {}, [{"id": "a", "status": "error", "reason": "boom"},
                                            {"id": "n", "status": "ok", "samples_ms": [1.0]}], env={})
    d = {x.id: x for x in compare.compare(old, new)}
    assert d["a"].verdict == "failing" and "boom" in d["a"].note
    assert d["n"].verdict == "new"


def test_json_schema_round_trip(tmp_path):
    doc = _doc({"m/ort-cpu/fp32/64x64/b1": np.array([1.0, 2.0, 3.0])})
    doc["results"][0]["rel_iqr"] = float("nan")  # NaN must become null, not invalid JSON
    p = tmp_path / "r.json"
    p.write_text(report.dumps(doc))
    back = report.load(p)
    assert back["schema"] == report.SCHEMA and back["schema_version"] == report.SCHEMA_VERSION
    assert back["results"][0]["samples_ms"] == [1.0, 2.0, 3.0]
    assert back["results"][0]["rel_iqr"] is None
    assert back["results"][0]["latency_ms"] == pytest.approx(doc["results"][0]["latency_ms"])
    json.loads(p.read_text())  # strict JSON


def test_schema_rejects_newer_and_foreign_files(tmp_path):
    p = tmp_path / "x.json"
    doc = _doc({"a": np.ones(3)})
    doc["schema_version"] = report.SCHEMA_VERSION + 1
    p.write_text(json.dumps(doc))
    with pytest.raises(ArtcamError, match="newer"):
        report.load(p)
    p.write_text(json.dumps({"results": []}))
    with pytest.raises(ArtcamError, match="not an artcam benchmark report"):
        report.load(p)
    p.write_text("{nope")
    with pytest.raises(ArtcamError, match="not valid JSON"):
        report.load(p)
