"""Reproduce the shipped generator ``runtime/models/generator_art64.onnx``.

    python -m artcam.training.make_generator                      # train (CPU: hours), export, evaluate
    python -m artcam.training.make_generator --device cuda        # the GPU recipe (about 5 minutes on an H100)
    python -m artcam.training.make_generator --from-checkpoint C  # export + evaluate an existing checkpoint

Training is ``artcam train generate`` with the recipe below; export writes the EMA generator with
its metadata (parity-checked against PyTorch) to ``--output`` (default ``OUT/generator_art64.onnx``: the
shipped model is replaced only when ``--output runtime/models/generator_art64.onnx`` says so); the
evaluation prints the Frechet distances (trained vs untrained, EfficientNet-Lite0 features) and the
nearest-neighbour memorisation check as JSON. The paintings come from ``--data`` (default
``$ARTCAM_DATA/art``, else ``../shared/data/art``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import data_root

NAME = "generator_art64"

# The recipes. CPU: the shipped model (6000 steps, about 85 min on two shared cores; small nets). GPU: bigger nets,
# batch 128, bf16; steps bounded by wall time.
RECIPES = {
    "cpu": ["--conditional", "--size", "64", "--g-base", "32", "--d-base", "32", "--batch-size", "32",
            "--steps", "6000", "--ema", "0.999", "--eval-every", "500", "--eval-samples", "500",
            "--eval-real", "2100", "--sample-every", "250", "--ckpt-every", "100", "--seed", "0",
            # one thread: on two cores shared with other jobs this ran 7x faster than two (43 vs 5.6 img/s)
            "--threads", "1"],
    "cuda": ["--conditional", "--size", "64", "--g-base", "64", "--d-base", "64", "--batch-size", "128",
             "--steps", "100000", "--max-minutes", "5", "--amp", "--eval-every", "1000", "--eval-samples", "2000",
             "--eval-real", "0", "--sample-every", "1000", "--ckpt-every", "500", "--seed", "0"],
}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.training.make_generator", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="the 7 WikiArt style folders (default: $ARTCAM_DATA/art, "
                                                 "else ../shared/data/art)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--out", default="runs/generator_art64", help="run folder (checkpoints, samples, the ONNX)")
    p.add_argument("--from-checkpoint", default=None, help="skip training: export this checkpoint")
    p.add_argument("--output", default=None, help=f"the ONNX model (default OUT/{NAME}.onnx; to replace the "
                                                    f"shipped model pass runtime/models/{NAME}.onnx)")
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--no-eval", action="store_true")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    a.data = a.data or str(data_root("art"))
    a.output = a.output or str(Path(a.out) / f"{NAME}.onnx")

    from artcam.training import common, frechet, generate

    if a.from_checkpoint:
        ckpt_path = Path(a.from_checkpoint)
    else:
        args = ["--data", a.data, "--out", a.out, "--device", a.device, "--name", NAME, *RECIPES[a.device]]
        rc = generate.main(args)
        if rc:
            return rc
        ckpt_path = Path(a.out) / "best.pt"
        if not ckpt_path.is_file():
            ckpt_path = Path(a.out) / "last.pt"
    ckpt = common.load_checkpoint(ckpt_path, generate.KIND)
    ckpt["name"] = NAME
    report = generate.export_checkpoint(ckpt, a.output)
    print(f"wrote {a.output} from {ckpt_path} (step {ckpt.get('step')})\n" + "\n".join(report.lines()))
    if not a.no_eval:
        res = frechet.evaluate_checkpoint(ckpt_path, a.data, samples=a.eval_samples, device=a.device)
        print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
