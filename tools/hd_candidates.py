"""Where the floor of an INT8 stylizer at 1280x720 lies on this CPU: untrained variants of ``stylizer_hd``
exported to ONNX and INT8 (the shipped export path), then timed model-only on one ONNX Runtime thread (one
frame-parallel worker's setting), alternating with the shipped INT8 twin in one run (``benchmarks.alternate``).
Untrained weights time like trained ones: the graph, not the values, sets the cost.

    python tools/hd_candidates.py --size 720x1280 --out runs/hd_candidates
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from artcam.benchmarks.alternate import alternate
from artcam.benchmarks.flops import count_flops
from artcam.runtime.backends.onnxrt import make_session
from artcam.runtime.cli import ArgParser
from artcam.training.stylize import PAINTINGS, export_checkpoint
from artcam.training.stylizer_nets import build_stylizer, config_for

# name: StylizerConfig overrides of the hd size
VARIANTS = {
    "hd": {},
    "hd_norm_from_8": {"norm_from": 8},  # no instance norm at 1/4
    "hd_8ch_half": {"down": ((8, 3, 2), (32, 3, 2), (64, 3, 2)), "up": ((32, 3), (8, 3))},
    "hd_2_blocks": {"blocks": 2},
    "hd_no_half_stage": {"up": ((32, 3),), "shuffle": 4, "out_kernel": 1},  # decode to 1/4, 4x4 pixel shuffle
    "hd_norm_in_blocks_only": {"norm_from": 16},  # instance norm only inside the residual blocks at 1/8
    "hd_norm_in_blocks_only_no_half_stage": {"norm_from": 16, "up": ((32, 3),), "shuffle": 4, "out_kernel": 1},
}


def main() -> int:
    p = ArgParser(prog="tools/hd_candidates.py", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="720x1280", help="HxW")
    p.add_argument("--out", default="runs/hd_candidates")
    p.add_argument("--data", default="../shared/data/photos", help="INT8 calibration photos")
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    styles = list(PAINTINGS)
    calls, flops = {}, {}
    x = {"image": np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32),
         "style": np.eye(len(styles), dtype=np.float32)[:1]}
    shipped = Path(__file__).resolve().parent.parent / "runtime" / "models" / "stylizer_hd_int8.onnx"
    paths = {"shipped stylizer_hd_int8": shipped}
    for name, kw in VARIANTS.items():
        torch.manual_seed(0)
        cfg = config_for("hd", len(styles), **kw)
        net = build_stylizer(cfg)
        ck = {"config": {"net": cfg.to_dict(), "styles": styles, "name": name, "recipe": {}},
              "model": net.state_dict()}
        export_checkpoint(ck, out / f"{name}.onnx")
        flops[name] = count_flops((out / f"{name}.onnx").read_bytes(),
                                  {"image": (1, 3, h, w), "style": (1, len(styles))}).gflops
        subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "export", str(out / f"{name}.onnx"), "--int8",
                        "--int8-fp32-stem", "--data", a.data, "-o", str(out / f"{name}_int8.onnx")],
                       check=True, capture_output=True)
        paths[name] = out / f"{name}_int8.onnx"
    for name, path in paths.items():
        s = make_session(str(path), threads=1)
        calls[name] = lambda s=s: s.run(None, x)
    wall = alternate(calls, a.runs).wall
    base = float(np.median(wall["hd"]))
    print(f"INT8, model only, 1 thread, {h}x{w}, median of {a.runs} alternating runs:")
    for name, v in wall.items():
        gf = f"{flops[name]:5.2f} GFLOP" if name in flops else " " * 11
        print(f"  {name:26s} {gf}  {np.median(v) * 1e3:6.1f} ms  {base / np.median(v):.2f}x the hd net")
    return 0


if __name__ == "__main__":
    sys.exit(main())
