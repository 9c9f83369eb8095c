"""Export and judge a generator run: ``python -m artcam.training.make_generator --from-checkpoint CKPT``.

The shipped ``runtime/models/generator_art64.onnx`` is rebuilt by its recipe
(``artcam train generate --recipe generator_art64``); without ``--from-checkpoint`` this script runs that
recipe first. It then writes the EMA generator with its metadata (parity-checked against PyTorch) to
``--output`` (default ``OUT/generator_art64.onnx``; the shipped file is replaced only when ``--output
runtime/models/generator_art64.onnx`` says so) and prints the Frechet distances (trained vs untrained,
EfficientNet-Lite0 features) and the nearest-neighbour memorisation check as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import data_root

NAME = "generator_art64"


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.training.make_generator", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="the WikiArt style folders (default: $ARTCAM_DATA/art, "
                                                 "else ../shared/data/art)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--out", default=f"runs/{NAME}", help="run folder (checkpoints, samples, the ONNX)")
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
        generate.main(["--recipe", NAME, "--data", a.data, "data.folder=", "--out", a.out,
                       f"train.device={a.device}", "--no-export"])
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
