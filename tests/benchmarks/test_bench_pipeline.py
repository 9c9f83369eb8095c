"""`artcam bench pipeline` and the pipeline-overhead script on tiny models and generated media."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.benchmarks import pipeline_bench, report

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))  # scripts, not installed
import pipeline_overhead  # noqa: E402


def _run(argv, capsys):
    rc = pipeline_bench.main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_single_and_live_scenarios(tmp_path, capsys):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    rc, doc = _run(["--style", str(sty), "--source-size", "48x64", "--source-fps", "40", "--duration-s", "1.0",
                    "--json", "-o", str(tmp_path / "rep")], capsys)
    assert rc == 0
    assert doc["kind"] == "pipeline" and report.validate(doc)
    res = {r["scenario"]: r for r in doc["results"]}
    single, live = res["single"], res["live"]
    for r in (single, live):
        assert r["status"] == "ok" and r["frames"] > 3
        st = r["stages"]
        assert set(st) == set(pipeline_bench.STAGES)
        assert len(st["e2e"]["samples_ms"]) == min(r["frames"], pipeline_bench.MAX_STORED_SAMPLES)
        for k in ("capture", "pre", "infer", "post", "output"):
            assert st[k]["median"] >= 0
        # end to end covers at least the stages run in sequence on the frame
        assert st["e2e"]["median"] >= st["infer"]["median"]
    assert single["dropped"] == 0  # single-stream never has a frame waiting
    assert single["captured"] - single["frames"] <= 1
    # live: frames arrive at ~40 fps for 1 s, none beyond what the source made
    assert live["captured"] <= 45 and live["frames"] + live["dropped"] <= live["captured"]
    assert (tmp_path / "rep" / "pipeline.json").is_file() and (tmp_path / "rep" / "pipeline.csv").is_file()
    assert "| infer |" in (tmp_path / "rep" / "pipeline.md").read_text()
    # a second run compared with the first: every scenario gets a verdict
    rc, doc2 = _run(["--style", str(sty), "--source-size", "48x64", "--source-fps", "40", "--duration-s", "0.5",
                     "--json", "--compare", str(tmp_path / "rep" / "pipeline.json"), "--threshold", "100"], capsys)
    assert rc == 0
    assert {c["id"] for c in doc2["comparison"]["cases"]} == {"pipeline/single", "pipeline/live"}
    assert all(c["verdict"] in ("same", "faster") for c in doc2["comparison"]["cases"])


def test_source_that_ends_early_reports_what_was_measured(tmp_path, capsys):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 56, 3), 40 * i, np.uint8))
    rc, doc = _run(["--style", str(sty), "--source", str(folder), "--scenario", "single", "--duration-s", "5",
                    "--json"], capsys)
    assert rc == 0
    (r,) = doc["results"]
    assert r["status"] == "ok" and r["frames"] == 4 and r["stopped_by"] == "end of source"
    assert "source ended after 4 frames" in r["reason"]


def test_bad_scenario_lists_choices(tmp_path):
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "bench", "pipeline", "--scenario", "burst"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "single, live" in r.stderr


def test_pipeline_overhead_measures_alternating_rounds():
    pytest.importorskip("onnx")
    doc = pipeline_overhead.measure("sample", frames=20, rounds=2, size=(48, 64), log=lambda m: None)
    (r,) = doc["results"]
    assert doc["kind"] == "overhead" and r["status"] == "ok"
    assert len(r["ratios"]) == 2 and r["ratio"]["rounds"] == 2
    assert all(na == 20 and nb == 20 for na, nb in r["frames_measured"])
    assert r["source_fps"]["median"] > 0 and r["pipeline_fps"]["median"] > 0
    assert r["ratio"]["median"] == pytest.approx(float(np.median(r["ratios"])), rel=1e-3)
    assert r["meets_target"] == (r["ratio"]["median"] >= 0.9)
    assert {"pre", "infer", "post"} <= set(r["pipeline_stage_median_ms"])


def test_pipeline_overhead_paced_source_runs_live():
    pytest.importorskip("onnx")
    doc = pipeline_overhead.measure("sample", frames=10, rounds=1, size=(32, 48), fps=100.0, log=lambda m: None)
    (r,) = doc["results"]
    assert r["id"].endswith("@100fps") and doc["settings"]["paced_fps"] == 100.0
    # a paced source cannot run faster than its rate (10 frames span 9 intervals)
    assert r["source_fps"]["median"] <= 100.0 * 10 / 9 * 1.03
