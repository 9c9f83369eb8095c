"""Open a model (name or path) with its metadata and a ready runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .backends.base import Runner
from .errors import ModelError
from .modelfile import ModelMeta, foreign_meta, read_model_file
from .zoo import resolve

BACKENDS = ("onnxruntime", "tensorrt", "openvino")


@dataclass
class ForeignFlags:
    """How to drive an ONNX file that carries no artcam metadata (CLI: --task, --mean, ...)."""

    task: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None
    pixel_range: tuple[float, float] | None = None
    color: str | None = None
    layout: str | None = None
    size: tuple[int, int] | None = None
    multiple: int | None = None
    latent_size: int | None = None

    @staticmethod
    def labels_from_file(path: str | Path) -> tuple[str, ...]:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"labels file not found: {p}")
        labels = tuple(line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
        if not labels:
            raise ModelError(f"labels file {p} is empty", "write one label per line")
        return labels


@dataclass
class LoadedModel:
    path: Path
    meta: ModelMeta
    runner: Runner
    extra: dict = field(default_factory=dict)

    def close(self) -> None:
        self.runner.deactivate()


def load_model(
    spec: str | Path,
    *,
    task: str | None = None,
    device: str = "auto",
    backend: str = "onnxruntime",
    threads: int = 0,
    opt_level: str = "all",
    flags: ForeignFlags | None = None,
    trt_options: Mapping[str, object] | None = None,
) -> LoadedModel:
    """Resolve, read and check metadata, open a runner; ``task`` rejects a model made for another job."""
    path = resolve(spec)
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    if path.suffix.lower() in (".engine", ".plan"):  # a TensorRT engine built by `artcam export`
        from .backends.trt import engine_meta, runner_for_engine  # lazy: TensorRT is optional

        meta = engine_meta(path)
        runner = runner_for_engine(path)
    elif backend == "tensorrt":
        from .backends.trt import runner_for_onnx

        data, meta = read_model_file(path)
        runner = runner_for_onnx(path, data)
    elif backend == "openvino":
        from .backends.openvino import OpenVinoRunner  # lazy: OpenVINO is optional

        data, meta = read_model_file(path)
        runner = OpenVinoRunner(data, threads=threads)
    else:
        from .backends.onnxrt import OrtRunner, SessionFromOnnx, tensorrt_ep_available

        data, meta = read_model_file(path)
        if trt_options is None and device in ("auto", "tensorrt") and tensorrt_ep_available():
            from .backends.engine_file import trt_ep_options  # engine + timing caches on disk

            trt_options = trt_ep_options()
        runner = OrtRunner(SessionFromOnnx(data, device=device, threads=threads, opt_level=opt_level,
                                           trt_options=trt_options))
    runner.activate()
    if meta is None:
        f = flags or ForeignFlags()
        ins, outs = runner.input_specs, runner.output_specs
        meta = foreign_meta(
            path.stem, f.task, input_name=ins[0].name, output_names=[o.name for o in outs],
            mean=f.mean, std=f.std, labels=f.labels, pixel_range=f.pixel_range, color=f.color,
            layout=f.layout, size=f.size, multiple=f.multiple, latent_size=f.latent_size,
        )
    if task is not None and meta.task != task:
        runner.deactivate()
        raise ModelError(
            f"model {meta.name!r} is a {meta.task} model, but this command needs a {task} model",
            "run `artcam models` to see each model's task",
        )
    _check_io(meta, runner, path)
    return LoadedModel(path, meta, runner)


def _check_io(meta: ModelMeta, runner: Runner, path: Path) -> None:
    """The metadata must name tensors the graph really has."""
    ins = {s.name for s in runner.input_specs}
    outs = {s.name for s in runner.output_specs}
    want_in = [x.name for x in (meta.image, meta.style, meta.latent, meta.classes) if x is not None]
    want_out = [h.name for h in meta.heads] + ([meta.output.name] if meta.output else [])
    for n in want_in:
        if n not in ins:
            raise ModelError(f"{path}: metadata names input {n!r}, the graph has {sorted(ins)}")
    for n in want_out:
        if n not in outs:
            raise ModelError(f"{path}: metadata names output {n!r}, the graph has {sorted(outs)}")
