"""How close a model runs to this machine's limit: its achieved GFLOP/s beside a measured matmul peak.

The peak is probed, not looked up: a square matrix product in ONNX Runtime's CPU provider (the kernels
the models' convolutions end in), FP32 ``MatMul`` and INT8 ``MatMulInteger`` (u8 x s8, the pairing
``artcam export --int8`` produces), with the benchmark's thread count and spinning off, as the
runtime runs. The best call of a short burst is the peak (load from other processes only slows calls
down). A model's share of the peak says how much headroom is left; FP16 on the CPU provider runs
largely in FP32 kernels, so it is set against the FP32 peak. GPU cases get no peak (CPU probe only).
"""

from __future__ import annotations

import time

import numpy as np

PROBE_N = 1024  # 2.1 GFLOP per product: long enough to time, short enough for a 1-second probe
CPU_BACKENDS = ("ort-cpu",)
PEAK_OF_PRECISION = {"fp32": "fp32", "fp16": "fp32", "int8": "int8"}


def _matmul_model(dtype: str, n: int) -> bytes:
    from onnx import TensorProto, helper

    if dtype == "fp32":
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
        b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
    else:
        a = helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])
        b = helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    graph = helper.make_graph([node], f"peak_{dtype}", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def probe(dtype: str, threads: int = 0, seconds: float = 0.5, n: int = PROBE_N) -> float:
    """Peak G(FL)OP/s of an ``n``-square product in ONNX Runtime CPU (best call of ``seconds``)."""
    from artcam.runtime.backends.onnxrt import make_session

    sess = make_session(_matmul_model(dtype, n), threads=threads)
    rng = np.random.default_rng(0)
    if dtype == "fp32":
        feeds = {"a": rng.standard_normal((n, n), np.float32), "b": rng.standard_normal((n, n), np.float32)}
    else:
        feeds = {"a": rng.integers(0, 255, (n, n), np.uint8), "b": rng.integers(-127, 127, (n, n), np.int8)}
    sess.run(None, feeds)
    best = float("inf")
    end = time.perf_counter() + seconds
    calls = 0
    while calls < 3 or time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return 2.0 * n ** 3 / best / 1e9


def measure_peaks(precisions, threads: int = 0, seconds: float = 0.5) -> dict:
    """``{"fp32": GFLOP/s, "int8": GOP/s, ...}`` for the peaks the ``precisions`` are set against."""
    wanted = sorted({PEAK_OF_PRECISION[p] for p in precisions if p in PEAK_OF_PRECISION})
    peaks = {d: round(probe(d, threads, seconds), 1) for d in wanted}
    return {"peak_gflops_per_s": peaks, "probe": f"ONNX Runtime CPU {PROBE_N}x{PROBE_N} MatMul/MatMulInteger, "
            f"best of {seconds:g} s", "threads": threads or "ort default"}


def annotate(results: list[dict], roofline: dict) -> None:
    """Add ``peak_gflops_per_s`` and ``share_of_peak`` to every CPU case with an achieved GFLOP/s."""
    peaks = roofline["peak_gflops_per_s"]
    for r in results:
        peak = peaks.get(PEAK_OF_PRECISION.get(r.get("precision", ""), ""))
        got = r.get("gflops_per_s")
        if r.get("status") != "ok" or r.get("backend") not in CPU_BACKENDS or not peak or not got:
            continue
        r["peak_gflops_per_s"] = peak
        r["share_of_peak"] = round(got / peak, 4)


def lines(results: list[dict], roofline: dict) -> list[str]:
    """The roofline lines printed under ``artcam bench``'s table."""
    peaks = roofline["peak_gflops_per_s"]
    out = ["roofline (measured peak: " + ", ".join(f"{k} {v:.0f} G{'OP' if k == 'int8' else 'FLOP'}/s"
                                                     for k, v in peaks.items())
           + f"; {roofline['probe']}, threads {roofline['threads']}):"]
    for r in results:
        if "share_of_peak" not in r:
            continue
        size = "x".join(str(x) for x in r["imgsz"]) if r.get("imgsz") else "-"
        out.append(f"  {r['model']} {r['precision']} {size} b{r['batch']}: {r['gflops_per_s']:.1f} of "
                   f"{r['peak_gflops_per_s']:.0f} G{'OP' if r['precision'] == 'int8' else 'FLOP'}/s "
                   f"({r['share_of_peak']:.0%} of peak)")
    return out
