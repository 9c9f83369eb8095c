"""benchmarks.op_profile: kernel time per op type and node from ONNX Runtime's profiler."""

from __future__ import annotations

import json

import pytest
import tiny_models as tm

pytest.importorskip("onnx")

from artcam.benchmarks import op_profile  # noqa: E402


def test_profile_of_a_tiny_stylizer(tmp_path):
    model = tm.stylizer(tmp_path / "s.onnx")
    out = tmp_path / "p.json"
    assert op_profile.main([str(model), "--size", "32x48", "--runs", "3", "--json", str(out)]) == 0
    prof = json.loads(out.read_text())["profiles"][0]
    assert prof["kernel_ms"] > 0 and prof["size"] == [32, 48]
    assert abs(sum(d["share"] for d in prof["by_op"].values()) - 1.0) < 0.01
    assert set(prof["by_op"]) <= set(prof["optimized_graph_ops"]) and prof["top_nodes"]
