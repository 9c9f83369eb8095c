"""Model latency benchmark: backends x precisions x input sizes x batch sizes, measured interleaved.

Within one (model, size, batch) group every runnable case is opened first, warmed up, then timed in
rounds (A B C A B C ...), so a machine that slows down mid-run slows every case alike; ratios to the
group's baseline are taken per round and reported as median and quartiles. On GPUs the host-to-device
copy, compute and device-to-host copy are timed apart (ONNX Runtime CUDA/TensorRT EP through
IOBinding, PyTorch with synchronisation); on CPUs those columns are n/a.

torch, onnx, TensorRT and the export helpers are imported only for the cases that need them.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artcam.runtime.errors import ArtcamError, ModelError
from artcam.runtime.modelfile import ModelMeta, from_props, parse_model_bytes, read_model_file, with_metadata
from artcam.runtime.zoo import resolve

from . import envinfo, stats
from . import flops as flops_mod

BACKENDS: dict[str, str] = {
    "ort-cpu": "ONNX Runtime, CPUExecutionProvider",
    "ort-cuda": "ONNX Runtime, CUDAExecutionProvider with IOBinding (H2D / compute / D2H timed apart)",
    "ort-trt": "ONNX Runtime, TensorrtExecutionProvider with IOBinding",
    "tensorrt": "native TensorRT engine (artcam.runtime.backends.trt)",
    "torch": "PyTorch eager: from a training checkpoint, or an ONNX model through onnx2torch",
}
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((256, 256), (360, 640), (480, 640), (720, 1280))
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
MAX_STORED_SAMPLES = 5000


class Skip(Exception):
    """A case that cannot run here; the message says why (backend missing, variant unavailable...)."""


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return (s.splitlines()[0] if s else type(e).__name__)[:300]


# --- argument parsing helpers -------------------------------------------------------------------


def parse_choices(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise ArtcamError(f"unknown {what} {', '.join(repr(b) for b in bad) or '(empty)'}",
                          f"available {what}s: {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def parse_ints(text: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ArtcamError(f"{what} {text!r} is not a list of integers", f"use e.g. --{what} 1,4") from None
    if not out or min(out) < 1:
        raise ArtcamError(f"{what} must be positive integers, got {text!r}")
    return list(dict.fromkeys(out))


# --- models -------------------------------------------------------------------------------------


@dataclass
class ModelSource:
    """One model to benchmark: ONNX bytes (+ metadata) and, for checkpoints, the PyTorch module."""

    spec: str
    path: Path
    data: bytes
    meta: ModelMeta | None
    name: str
    hash: str
    torch_module: Any = None  # built lazily for the torch backend
    torch_reason: str = ""
    checkpoint: dict | None = None
    _variants: dict = field(default_factory=dict)
    logged: set = field(default_factory=set)
    _tmp: Any = None

    @property
    def task(self) -> str:
        return self.meta.task if self.meta else "unknown"

    def variant(self, precision: str, calib: Callable[[], list[dict]] | None = None,
                symmetric: bool = False) -> tuple[bytes, str]:
        """ONNX bytes at ``precision`` and how they were made; Skip when no converter is available."""
        if precision == "fp32":
            return self.data, "as stored"
        key = (precision, symmetric and precision == "int8")
        if key not in self._variants:
            try:
                self._variants[key] = convert_precision(self.data, precision, calib, symmetric)
            except Skip as e:
                self._variants[key] = e
        v = self._variants[key]
        if isinstance(v, Skip):
            raise v
        return v

    def temp_path(self, tag: str, data: bytes) -> Path:
        """Write variant bytes to a private temp file (backends that want a path: TensorRT)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="artcam-bench-")
        p = Path(self._tmp.name) / f"{self.name}.{tag}.onnx"
        if not p.exists():
            p.write_bytes(data)
        return p

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def load_source(spec: str) -> ModelSource:
    """A model name or .onnx path; or a training checkpoint (exported in memory for the ONNX backends)."""
    p = Path(spec)
    if p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return _checkpoint_source(p)
    path = resolve(spec)
    data, meta = read_model_file(path)
    name = meta.name if meta else path.stem
    return ModelSource(spec, path, data, meta, name, envinfo.model_hash(path, meta))


def _checkpoint_source(path: Path) -> ModelSource:
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        import torch
    except ImportError:
        raise ModelError(f"{path} is a PyTorch checkpoint and torch is not installed",
                         "install the train extra, or benchmark its exported .onnx") from None
    from artcam.export.onnx_export import to_onnx_bytes
    from artcam.export.trainers import TRAINERS, export_spec_for

    state = torch.load(path, map_location="cpu", weights_only=False)
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in TRAINERS:
        raise ModelError(f"{path} is not an artcam training checkpoint (kind {kind!r})",
                         "pass a checkpoint written by `artcam train`, or an .onnx file")
    spec = export_spec_for(state)
    data = to_onnx_bytes(spec["model"], spec["example_inputs"], spec["output_names"], spec.get("dynamic_axes"))
    meta: ModelMeta = spec["meta"]
    data = with_metadata(data, meta.to_props())
    digest, props = parse_model_bytes(data)
    meta = from_props(props, content_hash=digest) or meta
    src = ModelSource(str(path), path, data, meta, meta.name, envinfo.model_hash(path, None))
    src.torch_module = spec["model"].eval()
    src.checkpoint = {"kind": kind, "arch": state.get("arch"), "step": state.get("step", state.get("epoch"))}
    return src


def convert_precision(data: bytes, precision: str, calib: Callable[[], list[dict]] | None,
                      symmetric: bool = False) -> tuple[bytes, str]:
    """FP16 / INT8 Q/DQ variants from the export helper's ``artcam.export.precision``.

    INT8 is calibrated (min/max) on synthetic inputs of the benchmarked shape: the latency does not
    depend on the calibration images, the accuracy does (``artcam export`` measures that).
    """
    try:
        prec = importlib.import_module("artcam.export.precision")
    except ImportError as e:
        raise Skip(f"{precision} variant needs artcam.export.precision and its dependencies ({_first_line(e)})") from e
    try:
        if precision == "fp16":
            return bytes(prec.to_fp16(data)), "artcam.export.precision.to_fp16 (FP32 I/O)"
        opts = prec.Int8Options(method="minmax", symmetric_activations=symmetric, reduce_range=not symmetric)
        out = prec.quantize_int8(data, calib() if calib else [], opts)
        return bytes(out), ("artcam.export.precision.quantize_int8 (Q/DQ, per-channel, min/max on synthetic "
                            "inputs: latency only)")
    except ImportError as e:
        raise Skip(f"{precision} variant needs {e.name or e} (pip install 'artcam[export]')") from e
    except AttributeError as e:
        raise Skip(f"artcam.export.precision lacks a {precision} converter ({_first_line(e)})") from e
    except ArtcamError as e:
        raise Skip(f"{precision} conversion: {e}") from e
    except Exception as e:  # converters raise whatever onnx/onnxruntime raise
        raise Skip(f"{precision} conversion failed: {_first_line(e)}") from e


# --- inputs -------------------------------------------------------------------------------------


def _dyn(d) -> bool:
    return not isinstance(d, int) or d < 0


def size_plan(src: ModelSource, specs, requested: list[tuple[int, int]] | None) -> tuple[list, str]:
    """Input sizes to run: ``[None]`` for models without an image input; a fixed size when the model has one."""
    meta = src.meta
    image_name = meta.image.name if meta and meta.image else None
    img_spec = next((s for s in specs if s.name == image_name), None)
    if img_spec is None:
        img_spec = next((s for s in specs if len(s.shape) == 4), None)
    if img_spec is None:
        return [None], "no image input" if requested else ""
    fixed = meta.image.fixed_size if meta and meta.image else None
    shp = img_spec.shape
    nhwc = bool(meta and meta.image and meta.image.layout == "NHWC")
    hw = shp[1:3] if nhwc else shp[2:4]
    if fixed is None and not any(_dyn(d) for d in hw):
        fixed = (int(hw[0]), int(hw[1]))
    if fixed is not None:
        note = f"fixed input size {fixed[0]}x{fixed[1]}" if requested and list(requested) != [tuple(fixed)] else ""
        return [tuple(fixed)], note
    mult = meta.image.multiple if meta and meta.image else 1
    sizes = []
    for h, w in requested or DEFAULT_SIZES:
        sizes.append((-(-h // mult) * mult, -(-w // mult) * mult))
    rounded = [f"{a[0]}x{a[1]}->{b[0]}x{b[1]}" for a, b in zip(requested or DEFAULT_SIZES, sizes) if a != b]
    note = f"rounded up to multiples of {mult}: {', '.join(rounded)}" if rounded else ""
    return list(dict.fromkeys(sizes)), note


def make_feeds(meta: ModelMeta | None, specs, size: tuple[int, int] | None, batch: int, seed: int = 0) -> dict:
    """Synthetic inputs of the right names, shapes and dtypes (one-hot style/class vectors)."""
    rng = np.random.default_rng(seed)
    names = {}
    if meta is not None:
        for role, x in (("image", meta.image), ("style", meta.style), ("latent", meta.latent), ("class", meta.classes)):
            if x is not None:
                names[x.name] = role
    feeds = {}
    for s in specs:
        shape = list(s.shape)
        if shape and _dyn(shape[0]):
            shape[0] = batch
        elif len(shape) >= 2 and shape[0] != batch:  # a fixed 1-D input (style weights) has no batch dim
            raise Skip(f"input {s.name!r} has a fixed batch of {shape[0]}; batch {batch} needs a dynamic-batch export")
        role = names.get(s.name)
        if len(shape) == 4 and size is not None and role in ("image", None):
            nhwc = bool(meta and meta.image and meta.image.layout == "NHWC")
            hi, wi = (1, 2) if nhwc else (2, 3)
            if _dyn(shape[hi]):
                shape[hi] = size[0]
            if _dyn(shape[wi]):
                shape[wi] = size[1]
        shape = [1 if _dyn(d) else int(d) for d in shape]
        dt = np.dtype(s.dtype)
        if role in ("style", "class"):
            arr = np.zeros(shape, dtype=np.float32)
            arr.reshape(shape[0], -1)[:, 0] = 1.0
        elif role == "image":
            lo, hi_ = meta.image.range
            arr = rng.uniform(min(lo, hi_), max(lo, hi_), size=shape)
            if meta.image.mean != (0.0, 0.0, 0.0) or meta.image.std != (1.0, 1.0, 1.0):
                arr = rng.standard_normal(shape)  # already normalised; the exact values do not matter
        elif np.issubdtype(dt, np.floating):
            arr = rng.standard_normal(shape)
        else:
            arr = np.zeros(shape)
        feeds[s.name] = np.ascontiguousarray(arr.astype(dt))
    return feeds


# --- engines: one opened backend + precision for one model ----------------------------------------


class Engine:
    backend = ""
    provider = ""
    device = "cpu"
    how = ""

    def specs(self):
        raise NotImplementedError

    def prepare(self, feeds: dict) -> None:
        self.feeds = feeds

    def step(self) -> tuple[float | None, float, float | None]:
        """Run once; (host-to-device, compute, device-to-host) seconds, None where not separate."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class OrtEngine(Engine):
    _WANT = {"ort-cpu": ("cpu", "CPUExecutionProvider"), "ort-cuda": ("cuda", "CUDAExecutionProvider"),
             "ort-trt": ("tensorrt", "TensorrtExecutionProvider")}

    def __init__(self, backend: str, data: bytes, threads: int, precision: str):
        import onnxruntime as ort

        from artcam.runtime.backends.onnxrt import OrtRunner, SessionFromOnnx

        self.backend = backend
        device, want = self._WANT[backend]
        available = ort.get_available_providers()
        if want not in available:
            hint = "install onnxruntime-gpu on a machine with CUDA" if backend != "ort-cpu" else ""
            raise Skip(f"{want} is not in this onnxruntime build (available: {', '.join(available)})"
                       + (f"; {hint}" if hint else ""))
        trt_options = None
        if backend == "ort-trt":
            from artcam.runtime.backends.engine_file import trt_ep_options

            trt_options = trt_ep_options(fp16=precision == "fp16")
            if precision == "int8":
                trt_options["trt_int8_enable"] = True
        self.loader = SessionFromOnnx(data, device=device, threads=threads, trt_options=trt_options,
                                      log=lambda msg: None)
        self.runner = OrtRunner(self.loader)
        self.runner.activate()
        self.provider = self.runner.providers[0]
        if self.provider != want:
            self.runner.deactivate()
            raise Skip(f"{want} did not initialise ({self.loader.fallback_reason or 'fell back to ' + self.provider})")
        self.device = "cpu" if backend == "ort-cpu" else "cuda"
        self.session = self.runner.session
        self._ort = ort

    def specs(self):
        return self.runner.input_specs

    def prepare(self, feeds: dict) -> None:
        self.feeds = feeds
        if self.device == "cuda":
            self.binding = self.session.io_binding()
            self.out_names = [o.name for o in self.session.get_outputs()]

    def step(self):
        if self.device == "cpu":
            t0 = time.perf_counter()
            self.runner.infer(self.feeds, check=False)
            return None, time.perf_counter() - t0, None
        ort, io = self._ort, self.binding
        t0 = time.perf_counter()
        for name, arr in self.feeds.items():  # synchronous copies into fresh device buffers
            io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0))
        for name in self.out_names:
            io.bind_output(name, "cuda", 0)
        io.synchronize_inputs()
        t1 = time.perf_counter()
        self.session.run_with_iobinding(io)
        io.synchronize_outputs()  # Run already syncs the compute stream; this makes the boundary explicit
        t2 = time.perf_counter()
        io.copy_outputs_to_cpu()
        t3 = time.perf_counter()
        io.clear_binding_inputs()
        io.clear_binding_outputs()
        return t1 - t0, t2 - t1, t3 - t2

    def close(self) -> None:
        self.runner.deactivate()


class TrtEngine(Engine):
    backend = "tensorrt"
    device = "cuda"
    provider = "TensorRT"

    def __init__(self, src: ModelSource, data: bytes, precision: str, tag: str):
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            raise Skip("the tensorrt Python package is not installed (pip install tensorrt, NVIDIA GPU needed)") from None
        try:
            from artcam.runtime.backends import trt as trt_backend
        except ImportError as e:
            raise Skip(f"artcam.runtime.backends.trt cannot be imported ({_first_line(e)})") from e
        self._mod = trt_backend
        self.src, self.data, self.precision, self.tag = src, data, precision, tag
        self.runner = None

    def specs(self):
        return _probe_specs(self.data)

    def prepare(self, feeds: dict) -> None:
        self.feeds = feeds
        declared = {s.name: s.shape for s in self.specs()}
        profile = {n: (tuple(a.shape),) * 3 for n, a in feeds.items() if any(_dyn(d) for d in declared.get(n, ()))}
        path = self.src.temp_path(self.tag, self.data)
        self.runner = self._mod.runner_for_onnx(path, self.data, precision=self.precision, profiles=[profile],
                                                log=lambda m: print(m, file=sys.stderr))
        self.runner.activate()

    def step(self):
        t0 = time.perf_counter()
        self.runner.infer(self.feeds, check=False)  # H2D, enqueue and D2H on one stream, synchronised
        return None, time.perf_counter() - t0, None

    def close(self) -> None:
        if self.runner is not None:
            self.runner.deactivate()


class TorchEngine(Engine):
    backend = "torch"

    def __init__(self, src: ModelSource, precision: str, threads: int):
        try:
            import torch
        except ImportError:
            raise Skip("torch is not installed (the PyTorch eager baseline needs it)") from None
        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        module = src.torch_module
        if module is None:
            if src.torch_reason:
                raise Skip(src.torch_reason)
            try:
                import onnx
                from onnx2torch import convert
            except ImportError as e:
                why = "onnx2torch is not installed" if e.name == "onnx2torch" else f"onnx2torch cannot load ({e})"
                src.torch_reason = (f"no PyTorch module for an ONNX model ({why}): pass the training checkpoint "
                                    "(.pt), or pip install onnx2torch")
                raise Skip(src.torch_reason) from None
            try:
                module = convert(onnx.load_model_from_string(src.data))
            except Exception as e:
                src.torch_reason = f"onnx2torch could not convert {src.name}: {_first_line(e)}"
                raise Skip(src.torch_reason) from e
            src.torch_module = module
            self.how = "onnx2torch"
        else:
            self.how = "rebuilt from checkpoint"
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.provider = f"torch {torch.__version__} {self.device}"
        if precision == "int8":
            raise Skip("the PyTorch eager baseline has no int8 path; compare int8 on ort-* or tensorrt")
        if precision == "fp16" and self.device == "cpu":
            raise Skip("fp16 eager on CPU is not a deployment path; fp16 runs on CUDA only")
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.module = module.eval().to(self.device, dtype=self.dtype)
        self.src = src

    def specs(self):
        specs = _probe_specs(self.src.data)
        self._order = [s.name for s in specs]
        return specs

    def prepare(self, feeds: dict) -> None:
        self.feeds = [feeds[n] for n in self._order]

    def step(self):
        torch = self.torch
        cuda = self.device == "cuda"
        t0 = time.perf_counter()
        xs = [torch.from_numpy(a).to(self.device, dtype=self.dtype if a.dtype.kind == "f" else None)
              for a in self.feeds]
        if cuda:
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        with torch.inference_mode():
            out = self.module(*xs)
        if cuda:
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        outs = out if isinstance(out, (tuple, list)) else [out]
        _ = [o.float().cpu().numpy() for o in outs]
        t3 = time.perf_counter()
        if not cuda:
            return None, t3 - t0, None
        return t1 - t0, t2 - t1, t3 - t2

    def close(self) -> None:
        self.module = None
        if self.device == "cuda":
            self.torch.cuda.empty_cache()


def open_engine(src: ModelSource, backend: str, precision: str, threads: int, calib) -> Engine:
    if backend == "torch":
        return TorchEngine(src, precision, threads)
    if backend == "ort-trt" and precision == "fp16":
        data, how = src.data, "TensorRT EP with trt_fp16_enable on the fp32 graph"
    else:
        # TensorRT takes INT8 Q/DQ with symmetric activations (zero point 0).
        data, how = src.variant(precision, calib, symmetric=backend in ("ort-trt", "tensorrt"))
    if backend == "tensorrt":
        eng: Engine = TrtEngine(src, data, precision, f"{precision}")
        how += "; the TensorRT runner copies in, computes and copies out in one synchronised call (compute = all)"
    else:
        eng = OrtEngine(backend, data, threads, precision)
    eng.how = how
    return eng


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Timings:
    e2e: list = field(default_factory=list)
    h2d: list = field(default_factory=list)
    compute: list = field(default_factory=list)
    d2h: list = field(default_factory=list)
    round_medians: list = field(default_factory=list)
    warmup_iters: int = 0

    def add(self, e2e: float, parts) -> None:
        h2d, comp, d2h = parts
        self.e2e.append(e2e * 1e3)
        self.compute.append(comp * 1e3)
        self.h2d.append(float("nan") if h2d is None else h2d * 1e3)
        self.d2h.append(float("nan") if d2h is None else d2h * 1e3)


def _run_for(engine: Engine, t: Timings | None, *, seconds: float = 0.0, iterations: int = 0) -> int:
    """Run until ``seconds`` passed (at least one iteration) or exactly ``iterations`` times."""
    n = 0
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        parts = engine.step()
        e2e = time.perf_counter() - t0
        if t is not None:
            t.add(e2e, parts)
        n += 1
        if iterations:
            if n >= iterations:
                return n
        elif time.perf_counter() - start >= seconds:
            return n


def measure_interleaved(engines: list[Engine], warmup_s: float, duration_s: float | None,
                        iterations: int | None, rounds: int = 10) -> list[Timings]:
    """Warm each engine, then time them in alternating rounds; returns one Timings per engine."""
    out = [Timings() for _ in engines]
    slowest = 0.0  # seconds per iteration of the slowest engine, from its warm-up
    for e, t in zip(engines, out):
        t0 = time.perf_counter()
        t.warmup_iters = _run_for(e, None, seconds=warmup_s)
        slowest = max(slowest, (time.perf_counter() - t0) / t.warmup_iters)
    if iterations:
        r = max(1, min(rounds, iterations))
        chunks = [iterations // r + (1 if i < iterations % r else 0) for i in range(r)]
        for c in chunks:
            for e, t in zip(engines, out):
                before = len(t.e2e)
                _run_for(e, t, iterations=c)
                t.round_medians.append(float(np.median(t.e2e[before:])))
    else:
        # Every round runs each engine at least once: fewer rounds when one iteration outlasts a round's
        # share, so a slow model does not stretch the run far past --duration-s (but keep 3 for a spread).
        fit = int(duration_s / slowest) if slowest > 0 else rounds
        r = max(1, min(rounds, round(duration_s / 0.2), max(fit, min(3, rounds))))
        for _ in range(r):
            for e, t in zip(engines, out):
                before = len(t.e2e)
                _run_for(e, t, seconds=duration_s / r)
                t.round_medians.append(float(np.median(t.e2e[before:])))
    return out


# --- the benchmark run --------------------------------------------------------------------------


@dataclass
class BenchConfig:
    models: list[str]
    backends: list[str] = field(default_factory=lambda: ["ort-cpu"])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    sizes: list[tuple[int, int]] | None = None  # None: each model's natural sizes
    batches: list[int] = field(default_factory=lambda: [1])
    warmup_s: float = 1.0
    duration_s: float | None = 3.0
    iterations: int | None = None
    percentiles: tuple[float, ...] = stats.DEFAULT_PERCENTILES
    threads: int = 0
    baseline: str = "first"  # first | torch | BACKEND[:PRECISION]
    rounds: int = 10

    def settings(self) -> dict:
        return {
            "models": list(self.models), "backends": list(self.backends), "precisions": list(self.precisions),
            "imgsz": [list(s) for s in self.sizes] if self.sizes else None, "batch": list(self.batches),
            "warmup_s": self.warmup_s, "duration_s": None if self.iterations else self.duration_s,
            "iterations": self.iterations, "percentiles": list(self.percentiles), "threads": self.threads,
            "baseline": self.baseline, "rounds": self.rounds,
        }


def case_id(model: str, backend: str, precision: str, size, batch: int) -> str:
    sz = f"{size[0]}x{size[1]}" if size else "-"
    return f"{model}/{backend}/{precision}/{sz}/b{batch}"


def _entry(src_name: str, src: ModelSource | None, backend: str, precision: str, size, batch: int) -> dict:
    return {
        "id": case_id(src_name, backend, precision, size, batch),
        "model": src_name,
        "model_path": str(src.path) if src else None,
        "model_hash": src.hash if src else None,
        "task": src.task if src else None,
        "backend": backend, "precision": precision,
        "imgsz": list(size) if size else None, "batch": batch,
        "status": "ok", "reason": "",
    }


def _pick_baseline(entries: list[dict], baseline: str, model: str) -> dict | None:
    """The case ``model``'s speed-ups are relative to: another model's (cross-model) or one of its own."""
    ok = [e for e in entries if e["status"] == "ok"]
    if not ok:
        return None
    cross = [e for e in ok if e["model"] == baseline]
    if cross:
        return cross[0]
    own = [e for e in ok if e["model"] == model]
    if not own:
        return None
    if baseline not in ("first", "", None):
        b, _, p = baseline.partition(":")
        for e in own:
            if e["backend"] == b and (not p or e["precision"] == p):
                return e
    return own[0]


@dataclass
class _Prepared:
    src: ModelSource
    specs: list
    sizes: list
    note: str


def run_benchmark(cfg: BenchConfig, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict:
    """Run every case; never raises for one bad model or backend: those become error/skipped entries.

    Cases of every model at the same (size, batch) are timed together, interleaved, so a comparison
    between models (``--baseline MODEL``) is as fair as one between backends.
    """
    results: list[dict] = []
    order: dict[str, int] = {}
    prepared: list[_Prepared] = []
    for i, spec in enumerate(cfg.models):
        try:
            src = load_source(spec)
        except Exception as e:  # ArtcamError: missing/corrupt; others: a checkpoint that fails to rebuild
            reason = str(e) if isinstance(e, ArtcamError) else _first_line(e)
            log(f"bench: {spec}: error: {reason}")
            e_ = _entry(str(spec), None, "-", "-", None, 0)
            e_.update(status="error", reason=reason)
            order.setdefault(str(spec), i)
            results.append(e_)
            continue
        order.setdefault(src.name, i)
        try:
            specs = _probe_specs(src.data)
        except Exception as e:
            e_ = _entry(src.name, src, "-", "-", None, 0)
            e_.update(status="error", reason=f"ONNX Runtime cannot load {src.path}: {_first_line(e)}")
            log(f"bench: {src.name}: error: {e_['reason']}")
            results.append(e_)
            src.close()
            continue
        sizes, note = size_plan(src, specs, cfg.sizes)
        if note:
            log(f"bench: {src.name}: {note}")
        prepared.append(_Prepared(src, specs, sizes, note))
    try:
        keys = list(dict.fromkeys((size, b) for p in prepared for size in p.sizes for b in cfg.batches))
        for size, batch in keys:
            members = [p for p in prepared if size in p.sizes]
            results.extend(_bench_group(members, cfg, size, batch, log))
    finally:
        for p in prepared:
            p.src.close()
    results.sort(key=lambda e: order.get(e["model"], len(order)))  # stable: per model, in run order
    return {"results": results}


def _probe_specs(data: bytes):
    from artcam.runtime.backends.onnxrt import OrtRunner, make_session

    sess = make_session(data)
    return [OrtRunner._spec(i) for i in sess.get_inputs()]


def _bench_group(members: list[_Prepared], cfg: BenchConfig, size, batch: int, log) -> list[dict]:
    entries, engines, live, flop_counts = [], [], [], []
    for m in members:
        src = m.src
        try:
            base_feeds = make_feeds(src.meta, m.specs, size, batch)
        except Skip as e:
            for b in cfg.backends:
                for p in cfg.precisions:
                    en = _entry(src.name, src, b, p, size, batch)
                    en.update(status="skipped", reason=str(e))
                    entries.append(en)
            log(f"bench: {src.name} batch {batch}: skipped: {e}")
            continue
        fc = flops_mod.count_flops(src.data, {k: v.shape for k, v in base_feeds.items()},
                                   {k: v.dtype for k, v in base_feeds.items()})

        def calib(src=src, specs=m.specs):
            return [make_feeds(src.meta, specs, size, 1, seed=i) for i in range(4)]

        for backend in cfg.backends:
            for precision in cfg.precisions:
                en = _entry(src.name, src, backend, precision, size, batch)
                en["note"] = m.note
                entries.append(en)
                eng = None
                try:
                    eng = open_engine(src, backend, precision, cfg.threads, calib)
                    feeds = make_feeds(src.meta, eng.specs(), size, batch)
                    eng.prepare(feeds)
                    eng.step()  # the first run allocates and compiles; fail here, not mid-timing
                except Exception as e:  # Skip: not runnable here; anything else: this case failed, others go on
                    skipped = isinstance(e, Skip)
                    en.update(status="skipped" if skipped else "error", reason=str(e) if skipped else _first_line(e))
                    if not skipped:
                        log(f"bench: {en['id']}: error: {_first_line(e)}")
                    elif (backend, precision, str(e)) not in src.logged:
                        src.logged.add((backend, precision, str(e)))
                        log(f"bench: {src.name} {backend}/{precision}: skipped: {e}")
                    if eng is not None:
                        try:
                            eng.close()
                        except Exception:
                            pass
                    continue
                en.update(provider=eng.provider, device=eng.device, how=eng.how)
                engines.append(eng)
                live.append(en)
                flop_counts.append(fc)
    if not engines:
        return entries
    what = ", ".join(f"{e['model']} {e['backend']}/{e['precision']}" for e in live)
    sz = f"{size[0]}x{size[1]}" if size else "-"
    log(f"bench: {sz} b{batch}: timing {what}")
    try:
        timings = measure_interleaved(engines, cfg.warmup_s, cfg.duration_s, cfg.iterations, cfg.rounds)
    finally:
        for e in engines:
            try:
                e.close()
            except Exception:
                pass
    for en, t, fc in zip(live, timings, flop_counts):
        _fill(en, t, cfg, batch, fc)
    for en, t in zip(live, timings):
        base = _pick_baseline(live, cfg.baseline, en["model"])
        if base is None:
            continue
        bt = timings[live.index(base)]
        ratios = [b / x for b, x in zip(bt.round_medians, t.round_medians) if x > 0]
        en["speedup_vs_baseline"] = {"baseline": base["id"], **(stats.ratio_summary(ratios) or {})}
    return entries


def _fill(en: dict, t: Timings, cfg: BenchConfig, batch: int, fc: flops_mod.FlopCount) -> None:
    ps = cfg.percentiles
    lat = stats.summarize(t.e2e, ps)
    total_s = sum(t.e2e) / 1e3
    en["iterations"] = len(t.e2e)
    en["warmup_iterations"] = t.warmup_iters
    en["rounds"] = len(t.round_medians)
    en["latency_ms"] = lat
    en["h2d_ms"] = stats.summarize(t.h2d, ps)
    en["compute_ms"] = stats.summarize(t.compute, ps)
    en["d2h_ms"] = stats.summarize(t.d2h, ps)
    en["throughput_qps"] = len(t.e2e) / total_s if total_s > 0 else None
    en["throughput_ips"] = en["throughput_qps"] * batch if en["throughput_qps"] else None
    en["rel_iqr"] = stats.rel_iqr(t.e2e)
    en["flops"] = fc.flops
    en["gflops"] = fc.gflops
    en["flops_note"] = fc.reason
    if fc.flops and lat:
        en["gflops_per_s"] = fc.flops / (lat["median"] / 1e3) / 1e9
    else:
        en["gflops_per_s"] = None
    samples = t.e2e
    if len(samples) > MAX_STORED_SAMPLES:  # keep the file small: an even thinning keeps the distribution
        idx = np.linspace(0, len(samples) - 1, MAX_STORED_SAMPLES).round().astype(int)
        samples = [samples[i] for i in idx]
    en["samples_ms"] = [round(x, 6) for x in samples]
    en["round_medians_ms"] = [round(x, 6) for x in t.round_medians]
