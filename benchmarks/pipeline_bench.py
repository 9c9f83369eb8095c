"""``artcam bench pipeline``: per-stage and end-to-end latency of the live pipeline.

Two scenarios on the same source, models and sink:
- single: the next frame is captured only when the last one has been output (MLPerf SingleStream):
  latency without queueing; its p90 is the headline number.
- live: frames arrive at the source's rate (a camera, or a file/sample paced to --source-fps) and
  the pipeline keeps only the latest frame: FPS, dropped frames and capture-to-output latency.

Stages per frame: capture (producing the frame), queue (waiting for the inference thread),
pre-process, inference, post-process, output (the sink's write: encode for files) and end to end
(capture start to output done). A source that ends early is reported with what was measured.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from typing import Any

import numpy as np

from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError

from . import envinfo, report, stats

SCENARIOS = ("single", "live")
STAGES = ("capture", "queue", "pre", "infer", "post", "output", "e2e")
MAX_STORED_SAMPLES = 5000


class TimedSource:
    """Wraps a source: times each frame's production; optionally gates or paces the frames.

    gate: the next frame is requested only after ``release()`` (single-stream).
    pace_fps: frames leave no faster than this rate (a file read as if it were a camera).
    """

    def __init__(self, source, gate: bool = False, pace_fps: float | None = None,
                 duration_s: float | None = None, frames: int | None = None):
        self.source = source
        self.duration_s, self.frames = duration_s, frames
        self._render_ms: list[float] = []
        if callable(getattr(source, "frame_at", None)):
            # A paced source sleeps until a frame is due: time its rendering, not the wait.
            inner = source.frame_at

            def timed_frame_at(i, _inner=inner):
                t = time.perf_counter()
                f = _inner(i)
                self._render_ms.append((time.perf_counter() - t) * 1e3)
                return f

            source.frame_at = timed_frame_at
        self.live = bool(getattr(source, "live", False)) or pace_fps is not None
        self.fps = getattr(source, "fps", None)
        self.description = getattr(source, "description", "source")
        self.skipped = 0
        self.capture_ms: list[float] = []
        self.pace_fps = pace_fps
        self._gate = threading.Semaphore(1) if gate else None
        self.ended = False

    def release(self) -> None:
        if self._gate is not None:
            self._gate.release()

    def __iter__(self):
        it = iter(self.source)
        start = time.perf_counter()
        i = 0
        deadline = start + self.duration_s + 1.0 if self.duration_s else float("inf")
        while self.frames is None or i < self.frames:
            if self._gate is not None:  # wait for the last frame's output, or give up at the deadline
                while not self._gate.acquire(timeout=0.05):
                    if time.perf_counter() > deadline:
                        return
            if self.pace_fps:
                delay = start + i / self.pace_fps - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            try:
                frame, _t = next(it)
            except StopIteration:
                self.ended = True
                self.skipped = getattr(self.source, "skipped", 0)
                return
            t1 = time.perf_counter()
            self.capture_ms.append(self._render_ms[-1] if self._render_ms else (t1 - t0) * 1e3)
            i += 1
            yield frame, t1

    def close(self) -> None:
        self.source.close()


class TimedSink:
    """Wraps a sink: the time of each ``write`` (drawing, encoding, writing) in output order."""

    def __init__(self, sink):
        self.sink = sink
        self.description = getattr(sink, "description", "sink")
        self.write_ms: list[float] = []

    def write(self, frame, info):
        t0 = time.perf_counter()
        ev = self.sink.write(frame, info)
        self.write_ms.append((time.perf_counter() - t0) * 1e3)
        return ev

    def close(self) -> None:
        self.sink.close()


def _stage_samples(pstats, src: TimedSource, sink: TimedSink) -> dict[str, list[float]]:
    recs = pstats.records
    cap = src.capture_ms
    out: dict[str, list[float]] = {k: [] for k in STAGES}
    for j, r in enumerate(recs):
        c = cap[r.index] if r.index < len(cap) else float("nan")
        w = sink.write_ms[j] if j < len(sink.write_ms) else float("nan")
        out["capture"].append(c)
        out["queue"].append(r.queue_ms)
        out["pre"].append(r.pre_ms)
        out["infer"].append(r.infer_ms)
        out["post"].append(r.post_ms)
        out["output"].append(w)
        out["e2e"].append(r.e2e_ms + (0.0 if math.isnan(c) else c))
    return out


def _thin(xs: list[float]) -> list[float]:
    if len(xs) > MAX_STORED_SAMPLES:
        idx = np.linspace(0, len(xs) - 1, MAX_STORED_SAMPLES).round().astype(int)
        xs = [xs[i] for i in idx]
    return [round(float(x), 4) for x in xs]


def run_scenario(scenario: str, open_src, processor, open_out, duration_s: float, frames: int | None,
                 percentiles, warmup_frames: int = 3, pace_fps: float | None = None) -> dict:
    """One scenario -> a result entry (status ok / error) with per-stage summaries."""
    from artcam.runtime.pipeline import Pipeline

    base = open_src(live=scenario == "live")
    src = TimedSource(base, gate=scenario == "single",
                      pace_fps=pace_fps if scenario == "live" and not getattr(base, "live", False) else None,
                      duration_s=duration_s, frames=frames if scenario == "single" else None)
    sink = TimedSink(open_out())
    # keep_records=None: every frame's record, aligned with the sink's write times (a bounded run)
    pipe = Pipeline(src, processor, sink, live=scenario == "live", keep_records=None,
                    on_frame=(lambda rec, info: src.release()) if scenario == "single" else None)
    entry: dict[str, Any] = {"id": f"pipeline/{scenario}", "scenario": scenario, "status": "ok", "reason": "",
                             "source": src.description, "sink": sink.description}
    try:
        for _ in range(warmup_frames):  # model warm-up outside the timed run
            processor(np.zeros((64, 64, 3), np.uint8))
        t0 = time.perf_counter()
        ps = pipe.run(max_frames=frames, duration_s=duration_s)
        wall = time.perf_counter() - t0
    finally:
        sink.close()
        src.close()
    samples = _stage_samples(ps, src, sink)
    n = ps.frames
    entry.update(
        frames=n, captured=ps.captured, dropped=ps.dropped, unreadable=ps.skipped, wall_s=round(wall, 3),
        fps=(n / ps.wall_s) if ps.wall_s > 0 else None, stopped_by=ps.stopped_by,
        source_fps=pace_fps if scenario == "live" else None,
        stages={k: {**(stats.summarize(v, percentiles) or {}), "samples_ms": _thin(v)} for k, v in samples.items()},
    )
    entry["latency_ms"] = {k: v for k, v in entry["stages"]["e2e"].items() if k != "samples_ms"}
    if src.ended and duration_s and ps.stopped_by == "end of source":
        entry["reason"] = f"source ended after {ps.captured} frames ({ps.wall_s:.1f} s of the {duration_s:g} s asked)"
    if n == 0:
        entry["status"] = "error"
        entry["reason"] = entry["reason"] or "no frame reached the output"
    return entry


def pipeline_table(doc: dict) -> str:
    ps = doc.get("settings", {}).get("percentiles") or [50, 90, 99]
    cols = ["median"] + [stats.pkey(p) for p in ps if stats.pkey(p) != "p50"] + ["max"]
    lines = [envinfo.one_line(doc.get("env", {}))]
    for r in doc["results"]:
        if r["status"] != "ok":
            lines.append(f"{r['scenario']}: {r['status']}: {r['reason']}")
            continue
        fps = f"{r['fps']:.1f}" if r.get("fps") else "n/a"
        lines.append(f"{r['scenario']}: {r['frames']} frames output, {r['captured']} captured, {r['dropped']} dropped, "
                     f"{fps} FPS in {r['wall_s']:.1f} s ({r['source']} -> {r['sink']}; stopped by {r['stopped_by']})"
                     + (f"; {r['reason']}" if r.get("reason") else ""))
        e2e = r["stages"]["e2e"]
        if r["scenario"] == "single" and "p90" in e2e:
            lines.append(f"  single-stream p90 latency (MLPerf SingleStream): {stats.fmt_ms(e2e['p90'])} ms")
        lines.append("  " + "stage".ljust(8) + "".join(c.rjust(9) for c in cols) + "   (ms)")
        for st in STAGES:
            s = r["stages"].get(st) or {}
            lines.append("  " + st.ljust(8) + "".join(stats.fmt_ms(s.get(c), 9) for c in cols))
    return "\n".join(lines)


def pipeline_markdown(doc: dict) -> str:
    ps = doc.get("settings", {}).get("percentiles") or [50, 90, 99]
    cols = ["median"] + [stats.pkey(p) for p in ps if stats.pkey(p) != "p50"] + ["max"]
    out = ["# artcam pipeline benchmark", "", f"- command: `{' '.join(doc.get('command', []))}`",
           f"- machine: {envinfo.one_line(doc.get('env', {}))}", ""]
    for r in doc["results"]:
        if r["status"] != "ok":
            out += [f"**{r['scenario']}**: {r['status']}: {r['reason']}", ""]
            continue
        out += [f"**{r['scenario']}**: {r['frames']} frames, {r['dropped']} dropped, "
                f"{r['fps']:.1f} FPS ({r['source']} -> {r['sink']})" + (f"; {r['reason']}" if r.get("reason") else ""), "",
                "| stage | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for st in STAGES:
            s = r["stages"].get(st) or {}
            out.append(f"| {st} | " + " | ".join(stats.fmt_ms(s.get(c)) for c in cols) + " |")
        out.append("")
    return "\n".join(out)


def write_pipeline_reports(doc: dict, out_dir, log) -> list:
    from pathlib import Path

    from artcam.runtime.fileio import atomic_write_text, check_writable_dir

    out = check_writable_dir(Path(out_dir))
    written = [atomic_write_text(out / "pipeline.json", report.dumps(doc)),
               atomic_write_text(out / "pipeline.md", pipeline_markdown(doc))]
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    ps = doc.get("settings", {}).get("percentiles") or [50, 90, 99]
    keys = ["median", *(stats.pkey(p) for p in ps), "min", "mean", "max"]
    w.writerow(["scenario", "stage", *keys, "frames", "dropped", "fps"])
    for r in doc["results"]:
        for st in STAGES if r["status"] == "ok" else ():
            s = r["stages"].get(st) or {}
            w.writerow([r["scenario"], st, *(s.get(k) for k in keys), r["frames"], r["dropped"], r["fps"]])
    written.append(atomic_write_text(out / "pipeline.csv", buf.getvalue()))
    ok = [r for r in doc["results"] if r["status"] == "ok"]
    plt = report._pyplot(log) if ok else None
    if plt is not None:
        fig, axes = plt.subplots(1, len(ok), figsize=(5.5 * len(ok), 4), squeeze=False)
        for ax, r in zip(axes[0], ok):
            data = [r["stages"][st]["samples_ms"] or [0] for st in STAGES]
            ax.boxplot(data, whis=(1, 99), showfliers=False)
            ax.set_xticks(range(1, len(STAGES) + 1), STAGES, fontsize=8)
            ax.set_ylabel("ms per frame (whiskers p1-p99)")
            ax.set_title(f"{r['scenario']}: {r['fps']:.1f} FPS, {r['dropped']} dropped")
            ax.grid(True, axis="y", alpha=0.3)
        written.append(report._save_fig(fig, out / "pipeline_stages.png", plt))
    return written


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="artcam bench pipeline",
                  description="Per-stage and end-to-end latency, FPS and drops of the live pipeline, "
                              "single-stream and live.")
    p.add_argument("--source", default="sample", help="sample (default), a video, an image folder, a camera index...")
    p.add_argument("--source-size", default="480x640", help="sample/camera frame size HxW (default 480x640)")
    p.add_argument("--source-fps", type=float, default=None,
                   help="frame rate of the live scenario (default: the source's own, else 30)")
    p.add_argument("--style", default=None, help="style name/index of --style-model, or a stylizer model path")
    p.add_argument("--style-model", default=None, help="stylizer model (default: the shipped stylizer)")
    p.add_argument("--size", type=int, default=None, help="stylize at this longer side, then scale back")
    p.add_argument("--classify", nargs="?", const="__default__", default=None, help="also classify (model name/path)")
    p.add_argument("--scenario", default="single,live", help="comma list of single, live (default both)")
    p.add_argument("--duration-s", type=float, default=10.0, help="seconds per scenario (default 10)")
    p.add_argument("--frames", type=int, default=None, help="stop each scenario after this many output frames")
    p.add_argument("--output", default="null", help="null (default) or out.mp4 / a folder to include encoding")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = default)")
    p.add_argument("--percentiles", default="50,90,95,99")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    p.add_argument("-o", "--out", metavar="REPORT_DIR", help="write pipeline.json/.csv/.md and a PNG here")
    p.add_argument("--compare", metavar="OLD.json", help="flag end-to-end slow-downs against an earlier pipeline report")
    p.add_argument("--threshold", type=float, default=0.05, help="slow-down tolerance for --compare (default 0.05)")
    return p


def make_processor(a):
    """The same FrameProcessor `artcam live` runs, from the same loaders."""
    from artcam.runtime.loading import load_model
    from artcam.runtime.pipeline import FrameProcessor
    from artcam.runtime.tasks import Classifier, Stylizer
    from artcam.runtime.zoo import DEFAULT_CLASSIFIER, DEFAULT_STYLIZER

    stylizer = classifier = None
    style, model = a.style, a.style_model
    if style is not None and (style.endswith(".onnx") or "/" in style):
        model, style = style, "0"
    if style is not None or model is not None or a.classify is None:
        lm = load_model(model or DEFAULT_STYLIZER, task="stylize", device=a.device, threads=a.threads)
        stylizer = Stylizer(lm, style=style if style is not None else 0, size=a.size)
    if a.classify is not None:
        name = DEFAULT_CLASSIFIER if a.classify == "__default__" else a.classify
        classifier = Classifier(load_model(name, task="classify", device=a.device, threads=a.threads))
    return FrameProcessor(stylizer, classifier)


def main(argv: list[str]) -> int:
    from artcam.runtime.sinks import NullSink, open_sink
    from artcam.runtime.sizes import parse_sizes
    from artcam.runtime.sources import open_source

    from .model_bench import parse_choices

    a = build_parser().parse_args(argv)
    old = report.load(a.compare) if a.compare else None
    if old is not None and old["kind"] != "pipeline":
        raise ArtcamError(f"{a.compare} is a {old['kind']} report, not a pipeline one")
    scenarios = parse_choices(a.scenario, SCENARIOS, "scenario")
    size = parse_sizes(a.source_size)[0]
    pcts = stats.parse_percentiles(a.percentiles)
    if a.duration_s <= 0:
        raise ArtcamError("--duration-s must be positive")
    probe = open_source(a.source, size=size, fps=a.source_fps)  # fail early on a bad source
    rate = a.source_fps or getattr(probe, "fps", None) or 30.0
    probe.close()
    processor = make_processor(a)

    def open_src(live: bool):
        return open_source(a.source, size=size, fps=a.source_fps or rate, live=live)

    def open_out():
        return NullSink() if a.output == "null" else open_sink(a.output, fps=rate)

    from .clock import ClockWatch

    results = []
    try:
        with ClockWatch() as clock:  # CPU clock and temperature before/during/after: a throttled run says so
            for sc in scenarios:
                print(f"bench: pipeline {sc}: {a.duration_s:g} s...", file=sys.stderr, flush=True)
                try:
                    results.append(run_scenario(sc, open_src, processor, open_out, a.duration_s, a.frames, pcts,
                                                pace_fps=rate))
                except ArtcamError as e:
                    results.append({"id": f"pipeline/{sc}", "scenario": sc, "status": "error", "reason": str(e)})
    finally:
        processor.close()
    if clock.warning():
        print(clock.warning(), file=sys.stderr)
    settings = {"source": a.source, "source_size": list(size), "source_fps": rate, "style": a.style,
                "style_model": a.style_model, "classify": a.classify, "size": a.size, "scenarios": scenarios,
                "duration_s": a.duration_s, "frames": a.frames, "output": a.output, "device": a.device,
                "threads": a.threads, "percentiles": list(pcts)}
    doc = report.new_document("pipeline", settings, results, argv=["pipeline", *argv], clock=clock.result())
    print(pipeline_table(doc), file=sys.stderr if a.json else sys.stdout, flush=True)
    code = 0 if any(r["status"] == "ok" for r in results) else 2
    if old is not None:
        from .compare import compare, regressions, table

        deltas = compare(old, doc, a.threshold)
        doc["comparison"] = {"old": a.compare, "threshold": a.threshold, "cases": [d.to_json() for d in deltas]}
        print(table(deltas, a.threshold), file=sys.stderr if a.json else sys.stdout)
        if code == 0 and regressions(deltas):
            code = 1
    if a.out:
        for p in write_pipeline_reports(doc, a.out, lambda m: print(m, file=sys.stderr)):
            print(f"bench: wrote {p}", file=sys.stderr)
    if a.json:
        sys.stdout.write(report.dumps(doc))
    return code
