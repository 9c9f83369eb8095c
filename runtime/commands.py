"""Runtime CLI verbs: demo, live, stylize, classify, generate, models, info (no torch anywhere)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import access, limits
from . import sinks as S
from .cli import ArgParser
from .errors import ArtcamError, InputError, Interrupted, SinkError, SourceError
from .guided import UPSAMPLE_MODES
from .health import MODEL, Health, HealthMonitor, HealthSink
from .loading import ForeignFlags, load_model
from .overwrite import add_overwrite_arg, refuse_input_as_output
from .pipeline import AUTO, FrameProcessor, Pipeline, PipelineStats
from .precision import PRECISIONS, choose
from .reconnect import DEFAULT_POLICY, parse_policy
from .sizes import size_arg as _size
from .sources import open_source
from .tasks import Classifier, Generator, Stylizer
from .viewer import ViewerSink
from .workers import MAX_WORKERS, auto_workers, keep_pair
from .workers import probe as probe_workers
from .zoo import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, DEFAULT_STYLIZER, stylizer_for


def _floats(n: int, nonzero: bool = False):
    def parse(s: str) -> tuple[float, ...]:
        try:
            v = tuple(float(x) for x in s.replace(" ", "").split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not {n} comma-separated numbers") from None
        if len(v) != n:
            raise argparse.ArgumentTypeError(f"{s!r} needs {n} comma-separated numbers")
        if not all(math.isfinite(x) for x in v):
            raise argparse.ArgumentTypeError(f"{s!r} has a value that is not a finite number")
        if nonzero and any(x == 0 for x in v):
            raise argparse.ArgumentTypeError(f"{s!r} has a zero (it divides)")
        return v
    return parse


def _int_at_least(low: int, what: str = "a whole number"):
    """An argparse type: a whole number >= ``low`` (argparse puts the option's name in the message)."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not {what}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{s!r} must be at least {low}")
        return v
    return parse


def _float_in(low: float, high: float = math.inf, low_open: bool = False):
    """An argparse type: a finite number in ``low..high`` (``(low..high`` when ``low_open``)."""
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{s!r} is not a finite number")
        if (v <= low if low_open else v < low) or v > high:
            lo = f"above {low:g}" if low_open else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{s!r} must be {lo}" + (f" and at most {high:g}" if high < math.inf else ""))
        return v
    return parse


_positive_int = _int_at_least(1)
_count = _int_at_least(0)
_positive_float = _float_in(0.0, low_open=True)
# With a stylizer on the same cores and frames classified inline (files, --every-frame): every 5th frame.
CLASSIFY_EVERY_WITH_STYLE = 5


def _classify_every(s: str) -> int | str:
    """``--classify-every``: a whole number >= 1, or ``auto``."""
    if s.strip().lower() == AUTO:
        return AUTO
    try:
        return _positive_int(s)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a whole number >= 1 or auto") from None


def _workers(s: str) -> int | str:
    """``--workers``: a whole number 1..MAX_WORKERS, or ``auto``."""
    if s.strip().lower() == AUTO:
        return AUTO
    try:
        v = int(s)
    except ValueError:
        v = 0
    if not 1 <= v <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{s!r} is not a whole number from 1 to {MAX_WORKERS} or auto")
    return v


def add_workers_arg(p) -> None:
    p.add_argument("--workers", type=_workers, default=AUTO,
                   help="inference workers, each with its own stylizer session (one thread each) taking frames in "
                        "turn, output in capture order; auto (default): 1, or for a live source of at least 1280x720 "
                        "on a CPU with 2+ cores what a start-up probe measures faster")


def _seed(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {s!r} is not a whole number") from None


def add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="auto tries TensorRT, then CUDA, then CPU (default: auto)")
    g.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "tensorrt", "openvino"],
                   help="onnxruntime (default), the native TensorRT runner, or OpenVINO on the CPU (pip install openvino)")
    g.add_argument("--threads", type=_count, default=0, help="CPU threads for ONNX Runtime (0 = its default)")
    g.add_argument("--opt-level", default="all", choices=["disable", "basic", "extended", "all"],
                   help="ONNX Runtime graph optimisation level (default: all)")


def add_foreign_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models without artcam metadata")
    g.add_argument("--task", choices=["classify", "stylize", "generate"], help="what the model does")
    g.add_argument("--mean", type=_floats(3), help="per-channel mean, e.g. 0.485,0.456,0.406")
    g.add_argument("--std", type=_floats(3, nonzero=True), help="per-channel std, e.g. 0.229,0.224,0.225")
    g.add_argument("--labels", help="a text file with one label per line")
    g.add_argument("--range", dest="pixel_range", type=_floats(2), help="input value range, e.g. 0,1 or 0,255")
    g.add_argument("--color", choices=["RGB", "BGR"], help="input colour order")
    g.add_argument("--layout", choices=["NCHW", "NHWC"], help="input layout")
    g.add_argument("--input-size", type=_size, help="fixed input size HxW")
    g.add_argument("--multiple", type=_positive_int, help="input H and W must be multiples of this")
    g.add_argument("--latent-size", type=_positive_int, help="latent size of a generator")


def foreign_flags(a: argparse.Namespace) -> ForeignFlags:
    return ForeignFlags(
        task=getattr(a, "task", None), mean=getattr(a, "mean", None), std=getattr(a, "std", None),
        labels=ForeignFlags.labels_from_file(a.labels) if getattr(a, "labels", None) else None,
        pixel_range=getattr(a, "pixel_range", None), color=getattr(a, "color", None),
        layout=getattr(a, "layout", None), size=getattr(a, "input_size", None),
        multiple=getattr(a, "multiple", None), latent_size=getattr(a, "latent_size", None),
    )


def _load(spec: str, task: str, a: argparse.Namespace, flags: ForeignFlags | None = None, threads: int | None = None):
    limits.check_threads(a.threads)
    return load_model(spec, task=task, device=a.device, backend=a.backend,
                      threads=a.threads if threads is None else threads, opt_level=a.opt_level, flags=flags)


def _load_classifier(spec: str, a: argparse.Namespace, background: bool, top_k: int = 3) -> Classifier:
    """A classifier on its own thread runs on one intra-op thread unless ``--threads`` says otherwise: all of
    its work is then on the worker thread, whose lowered priority lets the stylizer's threads have the cores
    first (``classify_worker``)."""
    return Classifier(_load(spec, "classify", a, threads=1 if background and not a.threads else None), top_k=top_k)


def add_stylize_args(p: argparse.ArgumentParser, style_default: str | None = "0"):
    """The stylize options; returns their group (``live`` adds ``--precision`` to it)."""
    g = p.add_argument_group("stylize")
    g.add_argument("--style", default=style_default,
                   help="style name or index inside the stylizer, or a path/name of another stylizer model")
    g.add_argument("--style-model", default=DEFAULT_STYLIZER, help=f"stylizer model (default: {DEFAULT_STYLIZER})")
    g.add_argument("--strength", type=_float_in(0.0, 1.0), default=1.0, help="blend with the original, 0..1 (default: 1)")
    g.add_argument("--preserve-color", action="store_true", help="keep the input's colours, take the style's texture")
    g.add_argument("--size", type=_positive_int, default=None, help="stylize at this longer side, then scale back")
    g.add_argument("--upsample", choices=UPSAMPLE_MODES, default="resize",
                   help="with --size below the frame's: scale back with a plain resize (default) or 'guided' "
                        "(bicubic plus the frame's full-resolution edges, a few ms more per HD frame)")
    return g


def make_stylizer(a: argparse.Namespace, flags: ForeignFlags | None = None, model: str | Path | None = None,
                  threads: int | None = None) -> Stylizer:
    """The stylizer the arguments name; ``model``: load that file instead with the same settings;
    ``threads``: intra-op threads instead of ``--threads``."""
    style, named = a.style, a.style_model
    if style is not None and (style.endswith(".onnx") or Path(style).is_file()):
        named, style = style, "0"
    elif style is not None and named == DEFAULT_STYLIZER:  # a style added with `artcam style add`: its user model
        named = stylizer_for(style)
    lm = _load(model or named, "stylize", a, flags, threads=threads)
    try:
        return Stylizer(lm, style=style if style is not None else 0, strength=a.strength,
                        keep_color=a.preserve_color, size=a.size, upsample=getattr(a, "upsample", "resize"))
    except ArtcamError:
        lm.close()
        raise


def add_precision_arg(g) -> None:
    g.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): a shipped stylizer's INT8 version where a start-up probe measures it faster "
                        "on this CPU; fp32; int8")


def stylizer_at_precision(a: argparse.Namespace, stylizer: Stylizer, shape: tuple[int, int],
                          threads: int | None = None) -> tuple[Stylizer, dict]:
    """``--precision``: the stylizer to run (its INT8 twin where asked or measured faster) and the decision,
    said in one line when a probe made it. ``threads``: as ``make_stylizer``'s."""
    st, info = choose(a.precision, stylizer, lambda path: make_stylizer(a, model=path, threads=threads), shape)
    if "probe_ms" in info:
        ms = info["probe_ms"]
        print(f"artcam: stylizer {info['model']} (start-up probe at {shape[1]}x{shape[0]}: "
              f"INT8 {ms['int8']:.1f} ms, FP32 {ms['fp32']:.1f} ms a frame; --precision to choose)", file=sys.stderr)
    return st, info


def _stylizer_on_cpu(a: argparse.Namespace) -> bool:
    """Whether a local stylizer will run on this machine's CPU (no GPU provider for ``--device auto``)."""
    if a.backend == "openvino":
        return True
    if a.backend != "onnxruntime" or a.device not in ("auto", "cpu"):
        return False
    if a.device == "cpu":
        return True
    import onnxruntime

    return not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(onnxruntime.get_available_providers())


def worker_count(a: argparse.Namespace, live: bool, shape: tuple[int, int], stylizing: bool = True) -> int:
    """``--workers``: the number given, or auto's (:func:`~artcam.runtime.workers.auto_workers`); more than
    one needs a local stylizer (:class:`InputError` otherwise)."""
    remote = bool(getattr(a, "remote", None))
    if a.workers == AUTO:
        return auto_workers(shape, live=live, local_cpu_stylizer=stylizing and not remote and _stylizer_on_cpu(a))
    if a.workers > 1 and remote:
        raise InputError("--workers does not apply with --remote", "the server runs the models; leave --workers out")
    if a.workers > 1 and not stylizing:
        raise InputError(f"--workers {a.workers} needs a stylizer (--style): the classifier runs once",
                         "leave --workers out")
    return a.workers


def load_stylizers(a: argparse.Namespace, workers: int, shape: tuple[int, int]) -> tuple[list[Stylizer], dict]:
    """One stylizer per worker, all at the precision ``--precision`` picks (probed once, on the first); with
    several, each session has one intra-op thread unless ``--threads`` says otherwise. ``--workers auto`` with
    two candidates: a start-up probe against one session with ``--threads``' threads keeps the faster
    (:func:`artcam.runtime.workers.probe`, said in one line; its timings go into the summary's ``stylizer``)."""
    threads = (a.threads or 1) if workers > 1 else None
    first, precision = stylizer_at_precision(a, make_stylizer(a, threads=threads), shape, threads=threads)
    stylizers = [first]
    try:
        for _ in range(workers - 1):
            stylizers.append(make_stylizer(a, model=first.model.path, threads=threads))
        if a.workers == AUTO and workers == 2:
            stylizers.append(make_stylizer(a, model=first.model.path))
            ms = probe_workers(stylizers[2], stylizers[:2], shape)
            precision["workers_probe_ms"] = {str(n): round(v, 2) for n, v in ms.items()}
            print(f"artcam: {2 if keep_pair(ms) else 1} inference worker(s) (start-up probe at {shape[1]}x{shape[0]}: "
                  f"two 1-thread sessions {1e3 / ms[2]:.1f} FPS, one session {1e3 / ms[1]:.1f} FPS; --workers to "
                  "choose)", file=sys.stderr)
            keep, drop = (stylizers[:2], stylizers[2:]) if keep_pair(ms) else (stylizers[2:], stylizers[:2])
            for st in drop:
                st.close()
            stylizers = keep
    except BaseException:
        for st in stylizers:
            st.close()
        raise
    return stylizers, precision


def _print_stats(stats: PipelineStats, as_json: bool) -> None:
    if as_json:
        print(json.dumps(stats.to_dict()))
    else:
        print(stats.summary())


def _add_source_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    g = p.add_argument_group("source")
    g.add_argument("--source", default=default, required=default is None,
                   help="0, /dev/video0, video.mp4, image.jpg, folder, 'glob*.jpg', rtsp://..., a GStreamer "
                        "pipeline (with '!'), sample, or latent-walk (with a generator --model)")
    g.add_argument("--loop", action="store_true", help="repeat a file or folder at its end")
    g.add_argument("--source-size", type=_size, default=None, help="camera / sample frame size HxW (default 480x640)")
    g.add_argument("--source-fps", type=_float_in(0.0, 1000.0, low_open=True), default=None,
                   help="sample source rate (default 30)")
    g.add_argument("--reconnect", type=parse_policy, default=None, metavar="stall=S,attempts=N,backoff=B",
                   help="cameras and streams that stop giving frames: after S seconds without one, reopen up to N "
                        "times, B seconds apart and doubling (default stall=5,attempts=5,backoff=0.5), then exit 2; "
                        "live: S is also when /healthz, --json and the systemd watchdog call a run stalled")


# --- live and demo ----------------------------------------------------------------------------


def _run_to_sink(a, source, processor, sink, *, open_ended: bool = False, announce: bool = True,
                 **kw) -> PipelineStats:
    """Run the pipeline and publish the sink's files only when the run is complete.

    Complete: the source ended, or the frame/duration limit or the quit key stopped it. Ctrl-C is a
    stop like the others only for an ``open_ended`` run (a camera or a looped file with no limit: a
    recording ends that way); otherwise it leaves the previous output as it was (``sink.abort()``). A
    failure always aborts.
    """
    if announce:
        print(f"artcam: {source.description} -> {sink.description}", file=sys.stderr)
    stats = None
    try:
        stats = Pipeline(source, processor, sink, **kw).run(max_frames=a.frames, duration_s=a.duration_s)
    finally:
        S.finish(sink, complete=stats is not None and (not stats.interrupted or open_ended))
        source.close()
    return stats


def _open_ended(a, source) -> bool:
    return (bool(getattr(source, "live", False)) or bool(getattr(a, "loop", False))) \
        and a.frames is None and a.duration_s is None


def _end_of_run(stats: PipelineStats, a, open_ended: bool, output: str | None) -> None:
    """After the summary: an interrupted run raises :class:`Interrupted` (exit 130) saying what was kept."""
    if not stats.interrupted:
        return
    out = output if output not in (None, "window", "null", "none") and not str(output).startswith("http://") else None
    if out is None:
        raise Interrupted(f"stopped after {stats.frames} frames")
    if open_ended:
        raise Interrupted(f"stopped after {stats.frames} frames; {out} holds them")
    if Path(out).suffix.lower() in S.VIDEO_EXTENSIONS + S.IMAGE_EXTENSIONS:
        raise Interrupted(f"after {stats.frames} frames; {out} was not written (a previous file there is unchanged)")
    raise Interrupted(f"after {stats.frames} frames; the {stats.frames} finished images in {out} are complete")


def live_main(argv: list[str]) -> int:
    p = ArgParser(prog="artcam live", description="Real-time stylization and/or classification of a live source.")
    _add_source_args(p, default="0")
    add_precision_arg(add_stylize_args(p, style_default=None))
    add_workers_arg(p)
    g = p.add_argument_group("classify")
    g.add_argument("--classify", nargs="?", const=DEFAULT_CLASSIFIER, default=None,
                   help=f"classify frames with this model (default when given alone: {DEFAULT_CLASSIFIER})")
    g.add_argument("--top-k", type=_positive_int, default=3)
    g.add_argument("--classify-every", type=_classify_every, default=None,
                   help="classify every Nth frame, or auto: as often as the stylizer leaves time for (live sources, "
                        "which classify on a thread of their own). Default: 1 without --style; with it, auto on a "
                        f"live source, else {CLASSIFY_EVERY_WITH_STYLE}")
    p.add_argument("--model", help="a generator for --source latent-walk")
    p.add_argument("--seed", type=_seed, default=0, help="latent walk seed")
    p.add_argument("--class", dest="cls", default=None, help="latent walk: stay on this class")
    p.add_argument("-o", "--output", default="window",
                   help="window (default), out.mp4, a folder, http://HOST:PORT (the web viewer: live view, "
                        "style and strength controls, stats; HOST defaults to 127.0.0.1) or null")
    g = p.add_argument_group("web viewer (-o http://HOST:PORT)")
    g.add_argument("--token", default=None,
                   help="require this token on every request (default: $ARTCAM_TOKEN; a HOST other than "
                        "loopback always requires one, generated and printed once when not given)")
    g.add_argument("--token-file", help="read the token from this file instead (keeps it out of `ps`; a service "
                   "gets it from systemd's credential, $CREDENTIALS_DIRECTORY/token)")
    g.add_argument("--max-clients", type=_positive_int, default=4,
                   help="most concurrent streams; more get 503 (default: 4)")
    p.add_argument("--hud", action="store_true", help="draw the HUD into files too")
    add_overwrite_arg(p)
    p.add_argument("--frames", type=_positive_int, default=None, help="stop after this many output frames")
    p.add_argument("--duration-s", type=_positive_float, default=None, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print health lines while running ({\"health\": \"ok\", "
                   "...} on every change and every 10 s) and the summary as JSON at the end")
    p.add_argument("--remote", metavar="URL", help="run the models on an `artcam serve` server instead: "
                   "grpc://HOST:8001 or http://HOST:8000 (add ?encoding=jpeg to send JPEG)")
    add_backend_args(p)
    a = p.parse_args(argv)
    a.token = access.token_from(a.token, a.token_file)
    limits.check_frame_size(a.source_size)
    if a.source == "latent-walk":
        return _latent_walk(a)
    if a.style is None and a.classify is None:
        a.style = "0"  # plain `artcam live` stylizes with the default model
    # the source first: a missing camera should fail before seconds of model loading
    source = open_source(a.source, loop=a.loop, size=a.source_size, fps=a.source_fps, reconnect=a.reconnect)
    # one stall time for the source (when to reopen it) and the health (when no output frame is a stall)
    health = Health((a.reconnect or DEFAULT_POLICY).stall_s, source=getattr(source, "health", None))
    processor, precision = None, None
    monitor = HealthMonitor(health, json_lines=a.json).start()  # --json lines, systemd readiness + watchdog
    try:
        refuse_input_as_output(source, a.output, a.overwrite_input)
        sink = open_sink_or_null(a.output, hud=a.hud, token=a.token, max_clients=a.max_clients)
        viewer = sink if isinstance(sink, ViewerSink) else None
        if viewer is not None:
            viewer.health = health  # GET /healthz
        with health.failing_as(MODEL):
            shape = a.source_size or (480, 640)
            workers = worker_count(a, bool(source.live), shape, stylizing=a.style is not None)
            if a.remote:  # the models run on the server (artcam.runtime.remote_tasks)
                from .remote_tasks import open_remote_tasks

                if a.size:  # the server stylizes frames at the size it gets them
                    raise InputError("--size does not apply with --remote", "resize the source with --source-size")
                if a.precision != "auto":  # the server runs the model it serves
                    raise InputError("--precision does not apply with --remote", "serve the model you want instead")
                stylizer, classifier = open_remote_tasks(
                    a.remote, stylizer_model=a.style_model if a.style is not None else None, style=a.style,
                    strength=a.strength, preserve_color=a.preserve_color, classifier_model=a.classify,
                    top_k=a.top_k)
                stylizers = [stylizer]
            else:
                stylizers, precision = load_stylizers(a, workers, shape) if a.style is not None else ([None], None)
                stylizer = stylizers[0]
                classifier = _load_classifier(a.classify, a, bool(source.live), a.top_k) if a.classify else None
            every = a.classify_every or (1 if stylizer is None else AUTO if source.live else CLASSIFY_EVERY_WITH_STYLE)
            processor = FrameProcessor(stylizers, classifier, every=every, background=bool(source.live))
            if viewer is not None:  # the page steers style and strength
                viewer.attach(processor, " + ".join(t.meta.name for t in (stylizer, classifier) if t is not None))
            for task in (*stylizers, classifier):  # pay one-time costs before the first live frame
                if task is not None:
                    task.warmup()
        open_ended = _open_ended(a, source)
        try:
            stats = _run_to_sink(a, source, processor, sink if viewer else HealthSink(sink, health),
                                 open_ended=open_ended)
        except (SourceError, SinkError):
            raise
        except Exception:  # raised by the inference thread: the model failed to run
            health.fail(MODEL)
            raise
    finally:
        monitor.stop()
        source.close()
        if processor is not None:
            processor.close()
    if precision:
        stats.extra["stylizer"] = precision
    _print_stats(stats, a.json)
    _end_of_run(stats, a, open_ended, a.output)
    return 0


def open_sink_or_null(spec: str, hud: bool = False, fps: float = 30.0, **viewer) -> S.Sink:
    """A window when asked for one and possible; otherwise say why in one line and continue headless.
    ``viewer``: ``token`` and ``max_clients`` for ``http://`` outputs."""
    if spec == "window":
        ok, why = S.display_available()
        if not ok:
            print(f"artcam: no window: {why}; running headless (use -o out.mp4 to save, "
                  "or -o http://127.0.0.1:8080 to watch in a browser)", file=sys.stderr)
            return S.NullSink()
    return S.open_sink(spec, hud=hud, fps=fps, **viewer)


def _latent_walk(a) -> int:
    """`live --source latent-walk`: a generator painting a smooth path through its latent space."""
    import cv2

    from .latent_walk import LatentWalk

    lm = _load(a.model or DEFAULT_GENERATOR, "generate", a)
    gen = Generator(lm)
    fixed = None
    if a.cls is not None:
        if a.cls not in gen.labels:
            gen.close()
            raise InputError(f"unknown class {a.cls!r}", f"this model has: {', '.join(gen.labels) or 'no classes'}")
        fixed = gen.labels.index(a.cls)
    walk = LatentWalk(gen.latent_size, seed=a.seed, n_classes=len(gen.labels), fixed_class=fixed)
    h, w = a.source_size or (512, 512)
    fps = a.source_fps or 30.0
    paced = a.output == "window" or a.output.startswith("http://")  # shown to people: real time

    class WalkSource:
        live = paced
        description = f"latent walk through {lm.meta.name} (seed {a.seed}{f', {fps:g} FPS' if paced else ''})"
        skipped = 0

        def __iter__(self):
            start, i = time.perf_counter(), 0
            while True:
                if paced:
                    delay = start + i / fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                i += 1
                yield walk.step(), time.perf_counter()

        def close(self):
            pass

    class WalkProcessor:
        timing: dict = {}

        def __call__(self, item):
            z, y = item
            img = gen.generate(z, y)[0]
            self.timing = gen.timing
            return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC), {"style": lm.meta.name}

    sink = open_sink_or_null(a.output, hud=a.hud, fps=a.source_fps or 30.0, token=a.token, max_clients=a.max_clients)
    open_ended = a.frames is None and a.duration_s is None
    try:
        stats = _run_to_sink(a, WalkSource(), WalkProcessor(), sink, open_ended=open_ended)
    finally:
        gen.close()
    _print_stats(stats, a.json)
    _end_of_run(stats, a, open_ended, a.output)
    return 0


def demo_main(argv: list[str]) -> int:
    p = ArgParser(prog="artcam demo", description="The main job on the built-in default: the `sample` camera "
                  "stand-in -> stylize + classify -> a video file, headless, then a latency summary.")
    p.add_argument("-o", "--output", default="artcam_demo.mp4", help="output video (default: artcam_demo.mp4)")
    p.add_argument("--frames", type=_positive_int, default=300, help="frames to process (default: 300)")
    p.add_argument("--duration-s", type=_positive_float, default=None)
    p.add_argument("--source", default="sample", help="any source; default: the sample camera stand-in")
    p.add_argument("--source-size", type=_size, default=(480, 640), help="frame size HxW (default 480x640)")
    p.add_argument("--style", default="0", help="style name or index (default: the first)")
    p.add_argument("--style-model", default=DEFAULT_STYLIZER)
    p.add_argument("--classify", default=DEFAULT_CLASSIFIER, help="classifier model, or none")
    p.add_argument("--classify-every", type=_classify_every, default=None,
                   help="classify every Nth frame, or auto: as often as the stylizer leaves time for, on a thread "
                        f"of its own (default: auto; with --every-frame, inline every {CLASSIFY_EVERY_WITH_STYLE})")
    p.add_argument("--cycle-styles", type=_count, default=60, help="switch style every N frames (0 = never)")
    p.add_argument("--every-frame", action="store_true",
                   help="process every frame as fast as possible (default: paced like a 30 FPS camera, "
                        "stale frames dropped, so latency is capture-to-output)")
    p.add_argument("--json", action="store_true")
    add_precision_arg(p)
    add_workers_arg(p)
    add_overwrite_arg(p)
    add_backend_args(p)
    a = p.parse_args(argv)
    limits.check_frame_size(a.source_size)
    a.strength, a.preserve_color, a.size = 1.0, False, None
    stylizers, precision = load_stylizers(a, worker_count(a, not a.every_frame, a.source_size), a.source_size)
    stylizer = stylizers[0]
    classifier = None if a.classify == "none" else _load_classifier(a.classify, a, background=not a.every_frame)
    every = a.classify_every or (CLASSIFY_EVERY_WITH_STYLE if a.every_frame else AUTO)
    processor = FrameProcessor(stylizers, classifier, every=every, background=not a.every_frame)
    for st in stylizers:
        st.warmup(a.source_size)
    if classifier:
        classifier.warmup()
    sink = S.open_sink(a.output, hud=True, fps=30.0)
    cycle = a.cycle_styles

    def on_frame(rec, info):
        if cycle and len(stylizer.styles) > 1 and rec.index and rec.index % cycle == 0:
            processor.handle(S.NEXT_STYLE)  # applied by the inference thread before its next frame

    try:
        live = not a.every_frame
        try:
            source = open_source(a.source, size=a.source_size, frames=None if live else a.frames, live=live)
            try:
                refuse_input_as_output(source, a.output, a.overwrite_input)
            except BaseException:
                source.close()
                raise
        except BaseException:
            sink.abort()
            raise
        print(f"artcam: {source.description} -> stylize ({precision['model']}) + classify "
              f"({classifier.meta.name if classifier else 'off'}) -> {sink.description}", file=sys.stderr)
        open_ended = _open_ended(a, source)
        stats = _run_to_sink(a, source, processor, sink, open_ended=open_ended, announce=False, on_frame=on_frame)
    finally:
        processor.close()
    stats.extra["stylizer"] = precision
    _print_stats(stats, a.json)
    _end_of_run(stats, a, open_ended, a.output)
    if not a.json:
        print(f"wrote {a.output}")
    return 0


# --- file commands ----------------------------------------------------------------------------


def _file_output(a, source) -> S.Sink:
    if a.output is None:
        raise InputError("no output given", "pass -o OUT (an image, a folder, a video file or null)")
    fps = getattr(source, "fps", None) or 30.0
    return S.open_sink(a.output, fps=fps)


def stylize_main(argv: list[str]) -> int:
    p = ArgParser(prog="artcam stylize", description="Stylize an image, a folder, a glob or a video into files.")
    p.add_argument("source", help="image, folder, glob, video, camera index or URL")
    add_stylize_args(p)
    p.add_argument("--model", dest="style_model_alias", help="same as --style-model")
    p.add_argument("-o", "--output", help="output image, folder or video")
    add_overwrite_arg(p)
    p.add_argument("--frames", type=_positive_int, default=None)
    p.add_argument("--duration-s", type=_positive_float, default=None)
    p.add_argument("--json", action="store_true")
    add_backend_args(p)
    add_foreign_args(p)
    a = p.parse_args(argv)
    if a.style_model_alias:
        a.style_model = a.style_model_alias
    source = open_source(a.source, live=False)
    processor = None
    try:
        refuse_input_as_output(source, a.output, a.overwrite_input)
        sink = _file_output(a, source)
        try:
            processor = FrameProcessor(make_stylizer(a, foreign_flags(a)), None)
        except BaseException:
            sink.abort()
            raise
        stats = _run_to_sink(a, source, processor, sink, announce=False, live=False, queue_size=1)
    finally:
        source.close()
        if processor is not None:
            processor.close()
    if source.skipped:
        print(f"artcam: skipped {source.skipped} unreadable image(s)", file=sys.stderr)
    if stats.interrupted:
        _end_of_run(stats, a, False, a.output)
    if stats.frames == 0:
        raise InputError(f"no readable frames in {a.source}; nothing written",
                         "check that it is a complete image or video that OpenCV can decode")
    if stats.frames == 1 and not source.skipped and not a.json:  # one picture: the speed of one frame is no news
        print(f"wrote {a.output}")
    else:
        _print_stats(stats, a.json)
    return 0


def classify_main(argv: list[str]) -> int:
    p = ArgParser(prog="artcam classify", description="Classify images, a folder, a glob or a video.")
    p.add_argument("source", help="image, folder, glob, video, camera index or URL")
    p.add_argument("--model", default=DEFAULT_CLASSIFIER, help=f"classifier (default: {DEFAULT_CLASSIFIER})")
    p.add_argument("--top-k", type=_positive_int, default=5)
    p.add_argument("--frames", type=_positive_int, default=None, help="stop after this many frames")
    p.add_argument("--json", action="store_true", help="one JSON object per image/frame")
    add_backend_args(p)
    add_foreign_args(p)
    a = p.parse_args(argv)
    source = open_source(a.source, live=False)
    clf = Classifier(_load(a.model, "classify", a, foreign_flags(a)), top_k=a.top_k)
    n = 0
    try:
        for frame, _ in source:
            preds = clf.classify(frame)
            cur = getattr(source, "current", None)
            name = str(cur) if cur is not None else f"{source.description}#{n}"
            if a.json:
                print(json.dumps({"source": name, "heads": [pr.as_dict() for pr in preds],
                                  "latency_ms": round(sum(clf.timing.values()), 2)}))
            else:
                for pr in preds:
                    top = ", ".join(f"{lab} ({p:.1%})" for lab, p in zip(pr.labels, pr.probs))
                    print(f"{name} [{pr.head}]: {top}")
            n += 1
            if a.frames is not None and n >= a.frames:
                break
    finally:
        source.close()
        clf.close()
    if source.skipped:
        print(f"artcam: skipped {source.skipped} unreadable image(s)", file=sys.stderr)
    if n == 0:
        raise InputError(f"no readable frames in {a.source}")
    return 0


def generate_main(argv: list[str]) -> int:
    p = ArgParser(prog="artcam generate", description="Paint new images with a generator and write a grid.")
    p.add_argument("--model", default=DEFAULT_GENERATOR, help=f"generator (default: {DEFAULT_GENERATOR})")
    p.add_argument("-n", type=_int_at_least(1), default=16, help="number of images (default 16)")
    p.add_argument("-o", "--output", default="generated.png", help="grid image, or a folder for single images")
    p.add_argument("--seed", type=_seed, default=None, help="random seed (a whole number)")
    p.add_argument("--class", dest="cls", default=None, help="class name for conditional generators")
    p.add_argument("--scale", type=_int_at_least(1), default=2, help="upscale each image by this factor in the grid")
    add_backend_args(p)
    a = p.parse_args(argv)
    from .fileio import check_image_path, write_image

    out = Path(a.output)
    grid = bool(out.suffix) and not out.is_dir()
    if grid:  # refused before the model loads, in the words stylize uses
        check_image_path(out)
    if not 1 <= a.n <= limits.MAX_GENERATE_N:  # before the model loads
        limits.check_generate(a.n, 1, 1)
    gen = Generator(_load(a.model, "generate", a))
    try:
        side = max(gen.generate(gen.sample_latents(1, a.seed), a.cls)[0].shape[:2])  # this model's image size
        limits.check_generate(a.n, side, a.scale)
        imgs = gen.generate(gen.sample_latents(a.n, a.seed), a.cls)
    finally:
        gen.close()
    import cv2

    imgs = [cv2.resize(i, None, fx=a.scale, fy=a.scale, interpolation=cv2.INTER_CUBIC) if a.scale > 1 else i
            for i in imgs]
    if grid:
        from .latent_walk import make_grid

        write_image(out, make_grid(np.stack(imgs), int(np.ceil(np.sqrt(len(imgs)))), pad=4, pad_value=255))
    else:
        for k, img in enumerate(imgs):
            write_image(out / f"sample_{k:03d}.png", img)
    print(f"wrote {out} ({len(imgs)} images, seed {a.seed})")
    return 0


# --- inventory --------------------------------------------------------------------------------


def models_main(argv: list[str]) -> int:
    from .zoo import list_models, user_dir

    p = ArgParser(prog="artcam models", description="List shipped and user models with their metadata.")
    p.add_argument("--json", action="store_true", help="name, task, path, labels or styles for each model")
    a = p.parse_args(argv)
    entries = list_models()
    if a.json:
        out = []
        for e in entries:
            d = {"name": e.name, "origin": e.origin, "path": str(e.path)}
            if e.meta:
                d.update(e.meta.summary())
                d["name"] = e.name
            if e.error:
                d["error"] = e.error
            out.append(d)
        print(json.dumps(out, indent=1))
        return 0
    if not entries:
        print(f"no models found (user folder: {user_dir()})")
    for e in entries:
        if e.error:
            print(f"{e.name:<20} {e.origin:<8} ERROR {e.error}")
            continue
        m = e.meta
        if m is None:
            print(f"{e.name:<20} {e.origin:<8} (no artcam metadata: pass --task etc.)")
            continue
        what = {
            "classify": lambda: "; ".join(f"{h.head or h.name}: {len(h.labels)} labels" for h in m.heads),
            "stylize": lambda: f"styles: {', '.join(m.styles) or m.name}",
            "generate": lambda: f"latent {m.latent.size}" + (f", classes: {', '.join(m.classes.labels)}" if m.classes else ""),
        }[m.task]()
        print(f"{e.name:<20} {e.origin:<8} {m.task:<9} {what}  [{e.path.stat().st_size / 1e6:.1f} MB]")
    print(f"\nuser models folder: {user_dir()} (set ARTCAM_MODELS to change)")
    return 0


def info_main(argv: list[str]) -> int:
    import platform

    import cv2
    import onnxruntime as ort

    p = ArgParser(prog="artcam info", description="Versions, execution providers and devices.")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from importlib.metadata import PackageNotFoundError, version

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    from .sinks import display_available

    disp, why = display_available()
    info = {
        "artcam": ver("artcam"), "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "cpu_count": __import__("os").cpu_count(),
        "numpy": np.__version__, "opencv": cv2.__version__, "onnxruntime": ort.__version__,
        "onnxruntime_device": ort.get_device(), "execution_providers": ort.get_available_providers(),
        "tensorrt": ver("tensorrt"), "torch": ver("torch"), "cuda_python": ver("cuda-python"),
        "display": disp if disp else why,
        "gstreamer": "GStreamer: YES" in " ".join(cv2.getBuildInformation().split()),
        "cameras": sorted(str(p) for p in Path("/dev").glob("video*")),
    }
    from .jetson import board_info  # which cv2, GStreamer, CUDA/TensorRT: what is missing and the fix

    info.update(opencv_path=cv2.__file__, **board_info())
    if a.json:
        print(json.dumps(info, indent=1))
    else:
        for k, v in info.items():
            if k != "checks":
                print(f"{k:<20} {v}")
        missing = [c for c in info["checks"] if not c["ok"]]
        if missing:
            print(f"\nmissing on this {'board' if 'jetson' in info['board'].lower() else 'machine'} "
                  "(needed for csi:// cameras / GPU inference):")
        for c in missing:
            print(f"  {c['name']:<12} {c['detail']}\n  {'':<12} fix: {c['fix']}")
    return 0
