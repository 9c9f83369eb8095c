"""Model-only time of stylizers on OpenVINO against ONNX Runtime, through the runtime's own runners
(``load_model(..., backend=...)``), one thread each (a frame-parallel worker's setting), alternating call by
call in one run (``benchmarks.alternate``).

    python tools/openvino_vs_ort.py stylizer_hd stylizer_hd_int8 stylizer_nano stylizer_nano_int8 --size 720x1280
"""

from __future__ import annotations

import sys

import numpy as np

from artcam.benchmarks.alternate import alternate
from artcam.runtime.cli import ArgParser
from artcam.runtime.loading import load_model


def main() -> int:
    p = ArgParser(prog="tools/openvino_vs_ort.py", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="stylizer names or .onnx paths")
    p.add_argument("--size", default="720x1280", help="HxW")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    calls, loaded = {}, []
    for m in a.models:
        for backend in ("onnxruntime", "openvino"):
            lm = load_model(m, task="stylize", device="cpu", backend=backend, threads=a.threads)
            loaded.append(lm)
            feeds = {"image": np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32),
                     "style": np.eye(len(lm.meta.styles), dtype=np.float32)[:1]}
            calls[f"{m} {backend}"] = lambda r=lm.runner, f=feeds: r.infer(f)
    wall = alternate(calls, a.runs, warmup=2).wall
    print(f"model only, {h}x{w}, {a.threads} thread(s), median of {a.runs} alternating runs:")
    for m in a.models:
        ort, ov = (float(np.median(wall[f"{m} {b}"])) * 1e3 for b in ("onnxruntime", "openvino"))
        print(f"  {m:24s} ONNX Runtime {ort:6.1f} ms   OpenVINO {ov:6.1f} ms   {ort / ov:.2f}x")
    for lm in loaded:
        lm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
