"""What the second (style) head costs: two-head classifier vs the same network with one head.

The one-head model is cut out of the two-head file itself (same weights, same graph up to the
"objects" output), so the difference is exactly the style head. Both run in ONNX Runtime (CPU, FP32)
at the file's fixed input size, alternating one inference each, so load changes on a shared machine
hit both alike; medians and their ratio are reported.

    python -m artcam.benchmarks.classifier_heads [--model classifier_lite0] [--runs 300] [--threads 2]
"""

from __future__ import annotations

import json
import sys

import numpy as np

from artcam.benchmarks.alternate import alternate
from artcam.runtime.cli import ArgParser


def objects_only(onnx_bytes: bytes, keep: str = "objects") -> bytes:
    """The sub-graph from the inputs to one output (unused nodes and weights dropped)."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load_from_string(onnx_bytes)
    inputs = [i.name for i in model.graph.input]
    sub = Extractor(model).extract_model(inputs, [keep])
    return sub.SerializeToString()


def measure(two_head: bytes, runs: int, threads: int, warmup: int = 10) -> dict:
    from artcam.runtime.backends.onnxrt import make_session

    one_head = objects_only(two_head)
    sessions = {"one_head": make_session(one_head, threads=threads),
                "two_head": make_session(two_head, threads=threads)}
    shape = [d if isinstance(d, int) else 1 for d in sessions["two_head"].get_inputs()[0].shape]
    name = sessions["two_head"].get_inputs()[0].name
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    times = alternate({k: (lambda s=s: s.run(None, {name: x})) for k, s in sessions.items()}, runs, warmup).wall
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    # Ratio of paired runs (same moment, same load) is steadier than a ratio of medians.
    paired = np.median(np.asarray(times["two_head"]) / np.asarray(times["one_head"]))
    return {"input": shape, "runs": runs, "threads": threads,
            "median_ms": med, "p90_ms": {k: float(np.percentile(v, 90)) * 1e3 for k, v in times.items()},
            "ratio_of_medians": med["two_head"] / med["one_head"], "median_paired_ratio": float(paired),
            "outputs": [o.name for o in sessions["two_head"].get_outputs()]}


def main(argv: list[str] | None = None) -> int:
    ap = ArgParser(prog="python -m artcam.benchmarks.classifier_heads", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="classifier_lite0", help="two-head classifier (shipped name or .onnx path)")
    ap.add_argument("--runs", type=int, default=300, help="timed inferences per model, alternating")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from artcam.runtime.modelfile import read_model_file
    from artcam.runtime.zoo import resolve

    data, meta = read_model_file(resolve(args.model))
    heads = [h.name for h in meta.heads] if meta else []
    if len(heads) < 2:
        print(f"{args.model} has {len(heads)} head(s); this benchmark needs a two-head classifier", file=sys.stderr)
        return 2
    r = measure(data, args.runs, args.threads)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        m = r["median_ms"]
        print(f"{args.model} input {r['input']} ORT CPU FP32, {args.threads} threads, {args.runs} alternating runs each")
        print(f"  objects only      : median {m['one_head']:.2f} ms (p90 {r['p90_ms']['one_head']:.2f})")
        print(f"  objects + style   : median {m['two_head']:.2f} ms (p90 {r['p90_ms']['two_head']:.2f})")
        print(f"  second head costs : {100 * (r['ratio_of_medians'] - 1):+.1f}% (ratio of medians), "
              f"{100 * (r['median_paired_ratio'] - 1):+.1f}% (median of paired ratios)")
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
