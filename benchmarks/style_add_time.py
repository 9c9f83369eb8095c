"""Wall time of `artcam style add`, end to end (start-up, the painting, the loss network, training, export),
and the steps it reached in that time: the number behind "a new style in minutes on a CPU".

    python -m artcam.benchmarks.style_add_time ../shared/data/styles/candy.jpg --json benchmarks/results/style_add_time.json
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

from artcam.benchmarks.result_file import write_result
from artcam.runtime.cli import ArgParser


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.style_add_time", description=__doc__.splitlines()[0])
    p.add_argument("painting")
    p.add_argument("--minutes", type=float, default=None, help="passed on (default: the command's own default)")
    p.add_argument("--json", default="")
    args, rest = p.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as models:  # a fresh user folder: nothing to append to
        cmd = [sys.executable, "-m", "artcam.runtime.cli", "style", "add", args.painting, "--into", "timed", *rest]
        if args.minutes is not None:
            cmd += ["--minutes", str(args.minutes)]
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, ARTCAM_MODELS=models))
        wall = time.perf_counter() - t0
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return run.returncode
    m = re.search(r"learned in ([\d.]+) min \((\d+) steps\)", run.stderr)
    steps, train_min = (int(m.group(2)), float(m.group(1))) if m else (None, None)
    print(f"style add: {wall / 60:.2f} min wall, {steps} steps ({train_min} min training)")
    write_result(args.json, {"painting": os.path.basename(args.painting), "wall_s": round(wall, 1),
                             "wall_min": round(wall / 60, 2), "steps": steps, "training_min": train_min,
                             "steps_per_s": round(steps / (train_min * 60), 2) if steps and train_min else None,
                             "cpus": os.cpu_count()}, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
