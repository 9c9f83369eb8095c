"""A picture for the README: generated paintings beside real ones, one row pair per style.

    python -m artcam.benchmarks.gan_samples [--model generator_art64] [--data DIR] -o gan_samples.png

For each class of a conditional generator: a row of samples (seeded) above a row of randomly
chosen real paintings of that style, prepared as the trainer prepares them (letterbox trimmed,
centre-cropped, resized to the model's size). An unconditional model gets one block of samples
above one block of real paintings. Uses only the ONNX model through the runtime.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from artcam.runtime.cli import ArgParser


def _label(img: np.ndarray, text: str, width: int) -> np.ndarray:
    bar = np.full((img.shape[0], width, 3), 255, np.uint8)
    y = img.shape[0] // 2
    for i, line in enumerate(text.split("\n")):
        cv2.putText(bar, line, (4, int(y + 4 + 14 * (i - 0.5 * text.count("\n")))), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], 1)


def real_paintings(folder: Path, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    from artcam.runtime.fileio import IMAGE_EXTENSIONS, read_image
    from artcam.training.generate import square_resize, trim_letterbox

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    pick = rng.choice(len(paths), min(n, len(paths)), replace=False)
    return np.stack([square_resize(trim_letterbox(read_image(paths[i])), size)[:, :, ::-1] for i in pick])


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.gan_samples", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="generator_art64")
    p.add_argument("--data", default=None, help="the paintings the model was trained on (default: "
                                                 "$ARTCAM_DATA/art, else ../shared/data/art)")
    p.add_argument("-n", type=int, default=8, help="images per row")
    p.add_argument("--seed", default="0")
    p.add_argument("--scale", type=int, default=2, help="upscale factor for viewing (nearest)")
    p.add_argument("-o", "--output", default="gan_samples.png")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)

    from artcam.runtime.errors import InputError
    from artcam.runtime.fileio import data_root, write_image
    from artcam.runtime.latent_walk import make_grid, parse_seed
    from artcam.runtime.loading import load_model
    from artcam.runtime.processing import ImagePostprocessor

    seed = parse_seed(a.seed)
    rng = np.random.default_rng(seed)
    m = load_model(a.model, task="generate", device="cpu")
    meta = m.meta
    data = Path(a.data) if a.data else data_root("art")
    try:
        labels = meta.classes.labels if meta.classes else ()
        rows = []
        post = ImagePostprocessor(meta.output)
        groups = [(c, data / c) for c in labels] if labels else [("all", data)]
        for name, folder in groups:
            if not folder.is_dir():
                raise InputError(f"no folder {folder} for class {name!r}", "pass --data with one folder per class")
            z = rng.standard_normal((a.n, meta.latent.size)).astype(np.float32)
            feeds = {meta.latent.name: z}
            if labels:
                feeds[meta.classes.name] = np.eye(len(labels), dtype=np.float32)[[labels.index(name)] * a.n]
            fake = np.stack([post(x)[:, :, ::-1] for x in m.runner.infer(feeds)[meta.output.name]])  # RGB
            size = fake.shape[1]
            real = real_paintings(folder, a.n, size, rng)
            pair = make_grid(np.concatenate([fake, real]), a.n, pad=2, pad_value=255)
            rows.append(_label(pair[:, :, ::-1], f"{name[:14]}\nfake/real", 110))
        sheet = np.concatenate(rows, 0)
        sheet = cv2.resize(sheet, None, fx=a.scale, fy=a.scale, interpolation=cv2.INTER_NEAREST)
        write_image(a.output, sheet)
        print(f"wrote {a.output}: {len(groups)} classes x {a.n} samples (top row of each pair) and real paintings")
    finally:
        m.close()
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
