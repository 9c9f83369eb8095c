"""Pipeline overhead: does the pipeline keep up with its source when the model costs nothing?

Alternates, in one run, (A) iterating the source alone and (B) the full pipeline (capture thread,
pre-processing, an identity stylizer in ONNX Runtime, post-processing, null sink) over the same
number of frames, and reports B/A throughput per round (median, quartiles, min/max); a median
ratio of 0.90 or more means the pipeline keeps up.

    python tools/pipeline_overhead.py [--source sample] [--frames 150] [--rounds 5] [--json]

Building the identity model needs the ``onnx`` package (export extra); the runtime does not.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from artcam.benchmarks import envinfo, report, stats
from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError

TARGET_RATIO = 0.90


def identity_stylizer(path: Path, styles: int = 2, multiple: int = 4) -> Path:
    """A stylizer whose graph is Identity on the image (the style input is declared, as the contract wants)."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise ArtcamError("building the identity model needs the onnx package", "pip install onnx") from None
    from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, StyleInput, write_model_file

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["stylized"])], "identity_stylizer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"]),
         helper.make_tensor_value_info("style", TensorProto.FLOAT, ["n", styles])],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="artcam-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    meta = ModelMeta(task="stylize", name="identity", image=ImageInput(multiple=multiple),
                     style=StyleInput(styles=tuple(f"style{i}" for i in range(styles))),
                     output=ImageOutput(name="stylized"), description="identity: measures pipeline overhead")
    return write_model_file(path, model.SerializeToString(), meta)


def _source_alone(open_src, frames: int) -> tuple[float, int]:
    src = open_src()
    n = 0
    t0 = time.perf_counter()
    try:
        for _frame, _t in src:
            n += 1
            if n >= frames:
                break
    finally:
        src.close()
    dt = time.perf_counter() - t0
    return (n / dt if dt > 0 else 0.0), n


def _pipeline(open_src, processor, frames: int, stage_ms: dict | None = None) -> tuple[float, int]:
    from artcam.runtime.pipeline import Pipeline
    from artcam.runtime.sinks import NullSink

    src = open_src()
    try:
        # paced sources run live (latest frame wins), so a slow pipeline shows as fewer output frames
        ps = Pipeline(src, processor, NullSink(), live=src.live).run(max_frames=frames)
    finally:
        src.close()
    if stage_ms is not None:
        for k, v in ps.stage_ms().items():
            stage_ms.setdefault(k, []).extend(v)
    return ps.fps, ps.frames


def measure(source: str = "sample", frames: int = 150, rounds: int = 5, size=(480, 640), threads: int = 0,
            fps: float | None = None, log=lambda m: print(m, file=sys.stderr)) -> dict:
    """``fps=None``: both sides as fast as they go (the strict test); else the source is paced like a camera."""
    from artcam.benchmarks.pipeline_bench import TimedSource
    from artcam.runtime.loading import load_model
    from artcam.runtime.pipeline import FrameProcessor
    from artcam.runtime.sources import open_source
    from artcam.runtime.tasks import Stylizer

    def open_src():
        src = open_source(source, size=size, frames=frames if source.startswith("sample") else None, live=False)
        return TimedSource(src, pace_fps=fps) if fps else src

    with tempfile.TemporaryDirectory(prefix="artcam-overhead-") as tmp:
        model = identity_stylizer(Path(tmp) / "identity.onnx")
        lm = load_model(model, task="stylize", device="cpu", threads=threads)
        processor = FrameProcessor(Stylizer(lm), None)
        try:
            _pipeline(open_src, processor, min(frames, 10))  # warm-up: sessions, thread pools, caches
            _source_alone(open_src, min(frames, 10))
            src_fps, pipe_fps, ratios, counts, stage_ms = [], [], [], [], {}
            for r in range(rounds):
                a, na = _source_alone(open_src, frames)
                b, nb = _pipeline(open_src, processor, frames, stage_ms)
                src_fps.append(a)
                pipe_fps.append(b)
                counts.append((na, nb))
                ratios.append(b / a if a > 0 else float("nan"))
                log(f"overhead: round {r + 1}/{rounds}: source {a:.1f} fps, pipeline {b:.1f} fps, ratio {ratios[-1]:.3f}")
        finally:
            processor.close()
    rs = stats.ratio_summary(ratios) or {}
    ok = bool(rs) and rs["median"] >= TARGET_RATIO
    result = {
        "id": f"overhead/{source}" + (f"@{fps:g}fps" if fps else ""), "status": "ok" if rs else "error", "reason": "" if rs else "no round measured",
        "source": source, "frame_size": list(size), "frames_per_round": frames,
        "frames_measured": counts,
        "source_fps": stats.summarize(src_fps, (50,)), "pipeline_fps": stats.summarize(pipe_fps, (50,)),
        "ratio": rs, "ratios": [round(x, 4) for x in ratios], "target": TARGET_RATIO, "meets_target": ok,
        # where a pipeline frame's time goes (inference thread: pre/infer/post; main thread: output)
        "pipeline_stage_median_ms": {k: round(float(stats.summarize(v)["median"]), 3)
                                     for k, v in stage_ms.items() if v},
    }
    settings = {"source": source, "frames": frames, "rounds": rounds, "frame_size": list(size), "threads": threads,
                "paced_fps": fps}
    return report.new_document("overhead", settings, [result], env=envinfo.environment(threads),
                               argv=["overhead", source])


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python tools/pipeline_overhead.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="sample", help="sample (default) or a video / image folder")
    p.add_argument("--frames", type=int, default=150, help="frames per round and side (default 150)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--size", default="480x640", help="sample frame size HxW (default 480x640)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--fps", type=float, default=None,
                   help="pace the source at this rate like a camera (default: unpaced, as fast as it goes)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from artcam.runtime.sizes import parse_sizes

    try:
        doc = measure(a.source, a.frames, a.rounds, parse_sizes(a.size)[0], a.threads, a.fps)
    except ArtcamError as e:
        print(f"artcam: error: {e}", file=sys.stderr)
        return 2
    r = doc["results"][0]
    rs = r["ratio"]
    print(f"{envinfo.one_line(doc['env'])}\n"
          f"source alone: median {r['source_fps']['median']:.1f} fps; pipeline with identity model: median "
          f"{r['pipeline_fps']['median']:.1f} fps\n"
          f"pipeline/source throughput: median {rs['median']:.3f} (IQR {rs['q1']:.3f}-{rs['q3']:.3f}, "
          f"min {rs['min']:.3f}, max {rs['max']:.3f}, {rs['rounds']} rounds) -> "
          f"{'meets' if r['meets_target'] else 'MISSES'} the {TARGET_RATIO:.0%} target\n"
          "pipeline stage medians (ms/frame): "
          + ", ".join(f"{k} {v:.2f}" for k, v in r["pipeline_stage_median_ms"].items()),
          file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(report._json_safe(doc), indent=1))
    return 0 if r["meets_target"] else 1


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
