"""The roofline line of `artcam bench`: achieved GFLOP/s beside a measured matmul peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tiny_models as tm

pytest.importorskip("onnx")

from artcam.benchmarks import roofline  # noqa: E402


def test_probe_measures_a_plausible_peak():
    fp32 = roofline.probe("fp32", seconds=0.2, n=256)
    int8 = roofline.probe("int8", seconds=0.2, n=256)
    assert 0.1 < fp32 < 100_000 and 0.1 < int8 < 1_000_000


def test_annotate_sets_each_cpu_case_against_its_precisions_peak():
    roof = {"peak_gflops_per_s": {"fp32": 200.0, "int8": 800.0}, "probe": "test", "threads": 1}
    results = [
        {"status": "ok", "backend": "ort-cpu", "precision": "fp32", "gflops_per_s": 50.0, "model": "m",
         "imgsz": [8, 8], "batch": 1},
        {"status": "ok", "backend": "ort-cpu", "precision": "fp16", "gflops_per_s": 20.0, "model": "m",
         "imgsz": [8, 8], "batch": 1},
        {"status": "ok", "backend": "ort-cpu", "precision": "int8", "gflops_per_s": 80.0, "model": "m",
         "imgsz": [8, 8], "batch": 1},
        {"status": "ok", "backend": "tensorrt", "precision": "fp32", "gflops_per_s": 900.0, "model": "m"},
        {"status": "skipped", "backend": "ort-cpu", "precision": "fp32", "gflops_per_s": None, "model": "m"},
    ]
    roofline.annotate(results, roof)
    assert [r.get("share_of_peak") for r in results] == [0.25, 0.1, 0.1, None, None]
    text = "\n".join(roofline.lines(results, roof))
    assert "50.0 of 200 GFLOP/s (25% of peak)" in text and "80.0 of 800 GOP/s (10% of peak)" in text


def test_bench_prints_and_records_the_roofline(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "bench", str(sty), "--imgsz", "32",
                        "--iterations", "5", "--warmup-s", "0", "--json"],
                       capture_output=True, text=True, timeout=120, env=os.environ)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["roofline"]["peak_gflops_per_s"]["fp32"] > 0
    assert set(doc["clock"]) == {"before", "after", "during", "dropped", "why"}  # probed under the clock watch
    case = doc["results"][0]
    assert case["peak_gflops_per_s"] == doc["roofline"]["peak_gflops_per_s"]["fp32"]
    assert case["share_of_peak"] == round(case["gflops_per_s"] / case["peak_gflops_per_s"], 4)
    assert "roofline (measured peak: fp32" in r.stderr and "of peak)" in r.stderr
