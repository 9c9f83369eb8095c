"""Where an ONNX model's time goes in ONNX Runtime CPU: kernel time per op type and per node, after ORT's
graph optimisations, for one or more models profiled in the same process.

For INT8 models this shows what stays in FP32 (``InstanceNormalization``, ``Transpose`` layout changes,
the ``QuantizeLinear``/``DequantizeLinear`` pairs around them) and what it costs next to ``QLinearConv``.
Profiled with the runtime's session options (spinning off); medians over ``--runs`` calls.

    python -m artcam.benchmarks.op_profile runtime/models/stylizer_nano.onnx runs/nano_int8.onnx --size 480x640
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from artcam.benchmarks.result_file import write_result
from artcam.runtime.cli import ArgParser
from artcam.runtime.sizes import SPELLING, size_arg


def _model_bytes(path: str) -> bytes:
    from artcam.runtime.modelfile import read_model_file

    try:
        return read_model_file(path)[0]
    except Exception:  # a plain .onnx without artcam metadata
        return Path(path).read_bytes()


def _feeds(sess, size: tuple[int, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        if len(i.shape) == 4:
            hw = tuple(i.shape[2:]) if all(isinstance(d, int) for d in i.shape[2:]) else size
            feeds[i.name] = rng.random((1, i.shape[1] if isinstance(i.shape[1], int) else 3, *hw), dtype=np.float32)
        else:
            n = i.shape[-1] if isinstance(i.shape[-1], int) else 1
            feeds[i.name] = np.eye(1, n, dtype=np.float32)
    return feeds


def profile(path: str, size: tuple[int, int], runs: int = 20, threads: int = 0) -> dict:
    """Median kernel ms per node and per op type, and the op counts of the optimised graph."""
    import onnx

    from artcam.runtime.backends.onnxrt import make_session, session_options

    with tempfile.TemporaryDirectory(prefix="artcam_prof_") as tmp:
        so = session_options(threads)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "p")
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        sess = make_session(_model_bytes(path), options=so)
        feeds = _feeds(sess, size)
        for _ in range(3 + runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
        graph_ops = Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["name"][: -len("_kernel_time")], e["args"]["op_name"])].append(e["dur"] / 1e3)
    nodes = {k: float(np.median(v[-runs:])) for k, v in per_node.items()}
    by_op: Counter = Counter()
    for (_, op), ms in nodes.items():
        by_op[op] += ms
    total = sum(by_op.values())
    return {"model": path, "size": list(size), "runs": runs, "kernel_ms": round(total, 3),
            "by_op": {op: {"ms": round(ms, 3), "share": round(ms / total, 4)} for op, ms in by_op.most_common()},
            "top_nodes": [{"node": n, "op": op, "ms": round(ms, 3)}
                          for (n, op), ms in sorted(nodes.items(), key=lambda x: -x[1])[:15]],
            "optimized_graph_ops": dict(graph_ops.most_common())}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.op_profile", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help=".onnx paths or model names")
    p.add_argument("--size", type=size_arg, default=(480, 640), metavar="HxW",
                   help=f"free-size image inputs' size, {SPELLING} (default 480x640)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default="")
    a = p.parse_args(argv)
    from artcam.runtime.zoo import resolve

    h, w = a.size
    out = []
    for m in a.models:
        path = m if m.endswith(".onnx") else str(resolve(m))
        r = profile(path, (h, w), a.runs, a.threads)
        out.append(r)
        print(f"{path}: {r['kernel_ms']:.1f} ms kernel time per call (median of {a.runs})")
        for op, d in list(r["by_op"].items())[:10]:
            print(f"  {op:24s} {d['ms']:7.2f} ms  {d['share']:6.1%}  ({r['optimized_graph_ops'].get(op, 0)} nodes)")
        for n in r["top_nodes"][:5]:
            print(f"    {n['op']:14s} {n['ms']:7.2f} ms  {n['node'][:70]}")
    write_result(a.json, {"profiles": out}, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
