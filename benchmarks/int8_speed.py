"""INT8 vs FP32 (or any two ONNX models) latency on ONNX Runtime CPU: same run, alternating, medians.

    python -m artcam.benchmarks.int8_speed FP32.onnx INT8.onnx [--size H W] [--runs 50] [--threads N]

Alternating the two sessions call by call keeps slow drifts of a shared machine (other jobs, clock
changes) from favouring either side; the ratio of medians is the figure to quote.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

from artcam.benchmarks.alternate import alternate
from artcam.benchmarks.result_file import write_result
from artcam.runtime.cli import ArgParser
from artcam.runtime.sizes import SPELLING, deprecated_size, size_arg


def _feed(path: str, data: bytes, sess, size):
    from artcam.export.parity import make_feeds, ort_inputs, synthetic_images
    from artcam.runtime.modelfile import read_model_file

    _, meta = read_model_file(path)
    return make_feeds(meta, ort_inputs(sess), synthetic_images(1, size=(480, 640)), size=size)[0]


def measure(a_path: str, b_path: str, size=(480, 640), runs: int = 50, warmup: int = 5, threads: int = 0) -> dict:
    from artcam.runtime.backends.onnxrt import make_session

    a_data, b_data = open(a_path, "rb").read(), open(b_path, "rb").read()
    sa, sb = make_session(a_data, threads=threads), make_session(b_data, threads=threads)
    # each model gets the same image through its own metadata (a style-frozen model has no style input)
    feeds = {"a": _feed(a_path, a_data, sa, size), "b": _feed(b_path, b_data, sb, size)}
    feed = feeds["a"]
    timed = alternate({"a": lambda: sa.run(None, feeds["a"]), "b": lambda: sb.run(None, feeds["b"])}, runs, warmup)
    times = {k: [t * 1e3 for t in v] for k, v in timed.wall.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    q = {k: [float(np.percentile(v, p)) for p in (10, 90)] for k, v in times.items()}
    return {
        "a": a_path, "b": b_path, "input": {k: list(v.shape) for k, v in feed.items()}, "runs": runs,
        "threads": threads or "ort default", "median_ms": {k: round(v, 3) for k, v in med.items()},
        "p10_p90_ms": {k: [round(x, 3) for x in v] for k, v in q.items()},
        "speedup_b_over_a": round(med["a"] / med["b"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = ArgParser(prog="python -m artcam.benchmarks.int8_speed", description=__doc__.splitlines()[0])
    ap.add_argument("a", help="baseline model (FP32)")
    ap.add_argument("b", help="model to compare (INT8)")
    ap.add_argument("--imgsz", type=size_arg, default=(480, 640), metavar="HxW",
                    help=f"input size for free-size image models, {SPELLING} (default 480x640)")
    ap.add_argument("--size", type=int, nargs=2, default=None, help=argparse.SUPPRESS)  # the old H W spelling
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ONNX Runtime default)")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    if args.size:
        args.imgsz = deprecated_size(ap.prog, "--size H W", args.size, "--imgsz")
    r = measure(args.a, args.b, tuple(args.imgsz), args.runs, args.warmup, args.threads)
    text = json.dumps(r, indent=2)
    print(text)
    write_result(args.json, r, ap.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
