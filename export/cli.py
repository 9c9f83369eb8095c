"""``artcam export``: checkpoint or ONNX -> verified ONNX (FP32/FP16/INT8), TensorRT engine, or Triton entry.

Every artifact is checked against its reference on real (``--data``) or synthetic images before it
is written (PyTorch for a checkpoint, the FP32 ONNX for FP16/INT8), and a quality report JSON is
written next to it. A failing artifact is refused unless ``--no-verify``. All writes are atomic.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from artcam.runtime.backends.onnxrt import make_session
from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError, ModelError
from artcam.runtime.sizes import SPELLING, deprecated_size, parse_size

from . import parity
from .parity import Tolerance
from .trainers import export_spec_for, read_checkpoint

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def build_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="artcam export", description="Export a checkpoint or ONNX model to a verified "
                  "ONNX (FP32/FP16/INT8), TensorRT engine or Triton model repository entry.")
    p.add_argument("source", help="trainer checkpoint (.pt) or an ONNX model (.onnx)")
    p.add_argument("--format", choices=("onnx", "engine", "triton"), default="onnx")
    p.add_argument("-o", "--out", help="output file (onnx/engine) or Triton repository folder")
    p.add_argument("--half", action="store_true", help="FP16 (sensitive ops kept FP32 where measured to matter)")
    p.add_argument("--int8", action="store_true", help="INT8 static quantisation (Q/DQ), calibrated on --data")
    p.add_argument("--data", help="folder of real images for calibration and verification (default: synthetic)")
    p.add_argument("--calib-method", choices=("minmax", "entropy", "percentile"), default="percentile")
    p.add_argument("--calib-count", type=int, default=64, help="calibration images (default 64)")
    p.add_argument("--verify-count", type=int, default=32, help="verification images (default 32)")
    p.add_argument("--int8-exclude-first-last", action="store_true", help="keep first and last conv/gemm in FP32")
    p.add_argument("--int8-exclude-ops", default="", metavar="OPS",
                   help="op types not to quantise, comma-separated (an op between quantised neighbours still "
                        "gets DQ->op->Q, which ORT fuses back to an INT8 kernel)")
    p.add_argument("--int8-full-range", action="store_true",
                   help="8-bit weights for ONNX Runtime targets too (default 7-bit there: full-range weights "
                        "saturate the INT8 kernels of x86 CPUs without VNNI; engines always get full range)")
    p.add_argument("--int8-fp32-stem", action="store_true",
                   help="keep convolutions that read the image's 3 channels in FP32 (faster on CPU for "
                        "full-resolution stems such as a stylizer's)")
    p.add_argument("--int8-keep-fp32", type=int, default=0, metavar="N",
                   help="measure each activation's quantisation SQNR and keep the N worst nodes in FP32")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch (and H, W for 4-D image tensors)")
    p.add_argument("--imgsz", nargs="+", metavar="HxW", help=f"export/verification/profile size, {SPELLING}")
    p.add_argument("--min-shape", help="TensorRT profile min, e.g. image:1x3x256x256,style:1x8")
    p.add_argument("--opt-shape", help="TensorRT profile opt")
    p.add_argument("--max-shape", help="TensorRT profile max")
    p.add_argument("--max-batch", type=int, default=1, help="TensorRT profile max batch (default 1)")
    p.add_argument("--triton-max-batch", type=int, default=8, help="Triton max_batch_size (0: no batching)")
    p.add_argument("--instances", type=int, default=1, help="Triton instance count")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    p.add_argument("--freeze-style", metavar="NAME", help="stylizers: bake one style in (its affines fold into the "
                   "convolutions; INT8 gains most)")
    p.add_argument("--device", default="auto", help="Triton instance kind: cpu or gpu/cuda (default gpu)")
    p.add_argument("--no-verify", action="store_true", help="write the artifact even if it fails the tolerance")
    p.add_argument("--atol", type=float, default=1e-4, help="max abs error ONNX vs PyTorch (default 1e-4)")
    p.add_argument("--workspace", type=int, default=2048, help="TensorRT workspace MiB")
    p.add_argument("--timing-cache", help="TensorRT timing cache file (read and updated)")
    p.add_argument("--version-compatible", action="store_true", help="engine runs on later TensorRT of this major")
    p.add_argument("--hardware-compatible", action="store_true", help="engine runs on any Ampere+ GPU")
    p.add_argument("--triton-plan", action="store_true", help="--format triton: build a TensorRT plan, not ONNX")
    p.add_argument("--name", help="model name (Triton folder, default output stem)")
    return p


# --- sources -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    onnx: bytes  # FP32 ONNX
    meta: Any  # ModelMeta | None
    stem: str
    reference: str  # what the FP32 ONNX was checked against
    report: dict


def _dynamic_axes(model, example: dict, output_names, spec_axes, force: bool) -> dict:
    """The trainer's axes, or with --dynamic: batch everywhere, H/W on 4-D image tensors."""
    if not force:
        return dict(spec_axes or {})
    import torch

    with torch.no_grad():
        outs = model(*example.values())
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    axes = {n: ({0: "n", 2: "h", 3: "w"} if t.dim() == 4 else {0: "n"}) for n, t in example.items()}
    for n, t in zip(output_names, outs):
        axes[n] = {0: "n", 2: "h", 3: "w"} if t.dim() == 4 else {0: "n"}
    return axes


def source_from_checkpoint(path: Path, args, feeds_images) -> Source:
    import torch

    from .onnx_export import check_onnx, simplify_onnx, to_onnx_bytes

    spec = export_spec_for(read_checkpoint(path))
    model, meta = spec["model"].eval(), spec["meta"]
    example = dict(spec["example_inputs"])
    if args.imgsz and meta is not None and meta.image is not None and meta.image.fixed_size is None:
        t = example[meta.image.name]
        example[meta.image.name] = torch.rand(t.shape[0], t.shape[1], *args.imgsz)
    axes = _dynamic_axes(model, example, spec["output_names"], spec.get("dynamic_axes"), args.dynamic)
    data = to_onnx_bytes(model, example, spec["output_names"], axes, args.opset)
    if args.simplify:
        data = simplify_onnx(data)
    check_onnx(data, "the exported graph")
    sess = make_session(data)
    feeds = parity.make_feeds(meta, parity.ort_inputs(sess), feeds_images, size=_verify_size(args, meta))
    cmp = parity.compare("ONNX Runtime vs PyTorch", parity.run_torch(model, feeds, spec["output_names"]),
                         parity.run_ort(sess, feeds), meta, Tolerance(max_abs=args.atol))
    _gate(cmp, args)
    return Source(data, meta, meta.name if meta else path.stem, "pytorch", {"onnx_vs_pytorch": cmp.to_dict()})


def source_from_onnx(path: Path, args) -> Source:
    from artcam.runtime.modelfile import read_model_file

    from .onnx_export import check_onnx, simplify_onnx

    data, meta = read_model_file(path)
    check_onnx(data, str(path))
    report: dict = {}
    if args.simplify:
        slim = simplify_onnx(data)
        feeds = _feeds_for(slim, meta, args, _images(args, args.verify_count)[0])
        cmp = parity.compare("simplified vs original ONNX", parity.run_ort(make_session(data), feeds),
                             parity.run_ort(make_session(slim), feeds), meta, Tolerance(max_abs=args.atol))
        _gate(cmp, args)
        report["simplified_vs_original"] = cmp.to_dict()
        data = slim
    return Source(data, meta, path.stem, "onnx", report)


# --- helpers -----------------------------------------------------------------------------------


def _verify_size(args, meta) -> tuple[int, int]:
    if args.imgsz:
        return tuple(args.imgsz)
    if meta is not None and meta.image is not None and meta.image.fixed_size:
        return tuple(meta.image.fixed_size)
    return (256, 320)  # non-square catches H/W mix-ups


def _images(args, n: int, exclude: set | None = None):
    """Images from --data spread over the folder (minus ``exclude``), else a few synthetic ones."""
    if not args.data:
        return parity.synthetic_images(max(2, min(n, 4))), []
    files = parity.list_image_files(args.data)
    where = args.data
    if exclude:
        files = [f for f in files if f not in exclude]
        where = f"{args.data} (after setting aside {len(exclude)} verification images)"
    return parity.load_images_from(files, n, where=where)


def _feeds_for(data: bytes, meta, args, images):
    sess = make_session(data)
    return parity.make_feeds(meta, parity.ort_inputs(sess), images, size=_verify_size(args, meta))


def _gate(cmp, args) -> None:
    for line in cmp.lines():
        print(line)
    if not cmp.passed and not args.no_verify:
        raise ModelError(f"{cmp.title} fails the tolerance; nothing was written",
                         "inspect the report above, or pass --no-verify to write it anyway")


def _labels(meta, used: list[Path], data_dir) -> dict[str, list[int]] | None:
    if meta is None or not meta.heads or not used or not data_dir:
        return None
    out = {}
    for h in meta.heads:
        y = parity.labels_for(used, Path(data_dir), h.labels)
        if y is not None:
            out[h.name] = y
    return out or None


def _with_precision(meta, **info):
    if meta is None:
        return None
    prov = dict(meta.provenance or {})
    prov["export"] = {**prov.get("export", {}), **info}
    return dataclasses.replace(meta, provenance=prov)


def _default_out(args, stem: str, suffix: str) -> Path:
    """``-o FILE`` as given; ``-o DIR`` (an existing folder) or no ``-o``: the default name, there or here.
    A default name never lands on a shipped model (``runtime/models``): that takes ``-o FILE``."""
    from artcam.runtime.zoo import check_not_shipped

    tag = "_int8" if args.int8 else "_fp16" if args.half else ""
    if not args.out:
        return check_not_shipped(Path(f"{stem}{tag}{suffix}"))
    out = Path(args.out)
    return check_not_shipped(out / f"{Path(stem).name}{tag}{suffix}") if out.is_dir() else out


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.imgsz:  # HxW; the old spelling was two numbers, H W
        args.imgsz = parse_size(args.imgsz[0]) if len(args.imgsz) == 1 else \
            deprecated_size("artcam export", "--imgsz H W", args.imgsz, "--imgsz")
    src_path = Path(args.source)
    if not src_path.is_file():
        raise ArtcamError(f"source not found: {src_path}", "pass a trainer checkpoint (.pt) or an .onnx file")
    if args.half and args.int8:
        raise ArtcamError("--half and --int8 are exclusive", "INT8 engines use FP16 for unquantised layers anyway")
    if args.format == "engine" or (args.format == "triton" and args.triton_plan):
        from artcam.runtime.backends.trt_build import import_trt

        import_trt()  # fail before minutes of verification, not after
    t0 = time.perf_counter()
    report: dict[str, Any] = {"source": str(src_path), "format": args.format, "argv": ["artcam", "export", *argv]}

    verify_images, verify_used = _images(args, args.verify_count)
    if src_path.suffix.lower() == ".onnx":
        src = source_from_onnx(src_path, args)
    elif src_path.suffix.lower() in CHECKPOINT_SUFFIXES:
        src = source_from_checkpoint(src_path, args, verify_images)
    else:
        raise ArtcamError(f"{src_path}: unknown source type {src_path.suffix!r}", "pass a .pt checkpoint or an .onnx model")
    report.update(src.report)
    data, meta, precision = src.onnx, src.meta, "fp32"
    takes_images = meta is None or meta.image is not None
    if not takes_images:  # generators: verify on --verify-count seeded latents rather than a few images
        verify_images = [None] * args.verify_count
    if args.int8 and not args.data and takes_images:
        raise ArtcamError("--int8 needs calibration images", "pass --data DIR with real images (64+ recommended)")
    if args.freeze_style:
        data, meta = _freeze(args, data, meta, verify_images, report)
        src.stem = meta.name

    fp32_sess = make_session(data)
    inputs = parity.ort_inputs(fp32_sess)
    vfeeds = parity.make_feeds(meta, inputs, verify_images, size=_verify_size(args, meta))
    refs = parity.run_ort(fp32_sess, vfeeds)
    labels = _labels(meta, verify_used, args.data)
    args._verify = (vfeeds, refs, labels)  # the engine check compares against the same FP32 outputs
    if args.half:
        from .precision import choose_fp16

        tol = Tolerance(max_abs=None, min_psnr=40.0, min_top1_agree=0.98, max_rel_mean=1e-2)
        choice = choose_fp16(data, vfeeds, refs, meta, tol, log=print)
        report["fp16"] = {"variant": choice.variant, "kept_fp32_ops": choice.kept_fp32, "measured": choice.measured}
        chosen = choice.measured[choice.variant]
        if not chosen["passed"] and not args.no_verify:
            raise ModelError("FP16 fails the tolerance in every variant; nothing was written",
                             "ship FP32, or pass --no-verify")
        data, precision = choice.onnx, "fp16"
        meta = _with_precision(meta, precision="fp16", fp16_variant=choice.variant)
    if args.int8:
        from .precision import Int8Options, quantize_int8

        if takes_images:
            cal_images, cal_used = _images(args, args.calib_count, exclude=set(verify_used))
        else:  # generators: calibration feeds are seeded latents (and class one-hots); no images needed
            cal_images, cal_used = [None] * args.calib_count, [None] * args.calib_count
        cfeeds = parity.make_feeds(meta, inputs, cal_images, size=_verify_size(args, meta), seed=1)
        symmetric = args.format == "engine" or (args.format == "triton" and args.triton_plan)
        opts = Int8Options(method=args.calib_method, symmetric_activations=symmetric,
                           reduce_range=not (symmetric or args.int8_full_range),
                           exclude_first_last=args.int8_exclude_first_last, keep_fp32=args.int8_keep_fp32,
                           fp32_stem_channels=4 if args.int8_fp32_stem else 0,
                           exclude_op_types=tuple(o.strip() for o in args.int8_exclude_ops.split(",") if o.strip()))
        t1 = time.perf_counter()
        q = quantize_int8(data, cfeeds, opts)
        qcmp = parity.compare(f"INT8 ({opts.method}, {len(cfeeds)} calibration images) vs FP32",
                              refs, parity.run_ort(make_session(q), vfeeds), meta,
                              Tolerance(max_abs=None, min_psnr=30.0, max_rel_mean=5e-2), labels=labels)
        _int8_accuracy_gate(qcmp, labels)
        report["int8"] = {"options": dataclasses.asdict(opts), "calibration_images": len(cal_used),
                          "verification_images": len(vfeeds),
                          "quantize_s": round(time.perf_counter() - t1, 1), "comparison": qcmp.to_dict()}
        _gate(qcmp, args)
        data, precision = q, "int8"
        meta = _with_precision(meta, precision="int8", calibration=opts.method,
                               calibration_images=len(cal_used))

    out = _write(args, src, data, meta, precision, report)
    report["precision"] = precision
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report_path = (out / "artcam_export_report.json") if out.is_dir() else out.with_name(out.name + ".report.json")
    from artcam.runtime.fileio import atomic_write_text

    atomic_write_text(report_path, json.dumps(report, indent=2, default=str))
    print(f"wrote {out} ({precision}); report {report_path}")
    return 0


def _freeze(args, data: bytes, meta, images, report: dict):
    from .onnx_export import freeze_style

    frozen, new_meta = freeze_style(data, meta, args.freeze_style)
    sess, fsess = make_session(data), make_session(frozen)
    feeds = parity.make_feeds(meta, parity.ort_inputs(sess), images, size=_verify_size(args, meta))
    idx = list(meta.style.styles).index(new_meta.name[len(meta.name) + 1:])
    for f in feeds:
        f[meta.style.name] = np.eye(len(meta.style.styles), dtype=np.float32)[idx : idx + 1]
    ffeeds = [{k: v for k, v in f.items() if k != meta.style.name} for f in feeds]
    cmp = parity.compare(f"style-frozen ({args.freeze_style}) vs multi-style ONNX", parity.run_ort(sess, feeds),
                         parity.run_ort(fsess, ffeeds), meta, Tolerance(max_abs=args.atol))
    _gate(cmp, args)
    report["frozen_vs_multistyle"] = cmp.to_dict()
    return frozen, new_meta


def _int8_accuracy_gate(cmp, labels) -> None:
    """Classifier target: top-1 accuracy may drop at most 1 point against the FP32 model."""
    for o in cmp.outputs:
        if o.ref_top1_acc is not None and o.ref_top1_acc - o.test_top1_acc > 0.01:
            o.failures.append(f"top1 accuracy drop {100 * (o.ref_top1_acc - o.test_top1_acc):.1f} > 1.0 point")


def _profiles(args, data: bytes, meta) -> list:
    from artcam.runtime.backends.engine_file import parse_shape_arg, profile_for_image_model, validate_profile

    inputs = {i.name: tuple(d if isinstance(d, int) else -1 for d in i.shape)
              for i in make_session(data).get_inputs()}
    if args.min_shape or args.opt_shape or args.max_shape:
        if not (args.min_shape and args.opt_shape and args.max_shape):
            raise ArtcamError("--min-shape, --opt-shape and --max-shape go together")
        mn, op, mx = (parse_shape_arg(s) for s in (args.min_shape, args.opt_shape, args.max_shape))
        if set(mn) != set(op) or set(mn) != set(mx):
            raise ArtcamError("--min/--opt/--max-shape must name the same inputs")
        prof = {n: (mn[n], op[n], mx[n]) for n in mn}
        # inputs not named (e.g. style weights) follow the batch range
        auto = profile_for_image_model({k: v for k, v in inputs.items() if k not in prof},
                                       max_batch=max(s[0] for s in mx.values()))
        prof.update(auto)
    else:
        hw = tuple(args.imgsz) if args.imgsz else _verify_size(args, meta)
        prof = profile_for_image_model(inputs, imgsz=hw, max_batch=args.max_batch)
    validate_profile(prof, inputs)
    return [prof] if prof else []


def _build_plan(args, data: bytes, meta, precision: str):
    from artcam.runtime.backends.trt import gpu_info
    from artcam.runtime.backends.trt_build import BuildOptions, build_engine

    props = {}
    if meta is not None:
        from artcam.runtime.modelfile import PREFIX, parse_model_bytes, with_metadata

        props = {k: v for k, v in parse_model_bytes(with_metadata(data, meta.to_props()))[1].items()
                 if k.startswith(PREFIX)}
    opts = BuildOptions(precision=precision, profiles=_profiles(args, data, meta), workspace_mb=args.workspace,
                        timing_cache=args.timing_cache, version_compatible=args.version_compatible,
                        hardware_compatible=args.hardware_compatible)
    return build_engine(data, opts, gpu=gpu_info(), meta_props=props)


ENGINE_TOLERANCE = {"fp32": Tolerance(max_abs=1e-3), "fp16": Tolerance(max_abs=None, min_psnr=40.0, max_rel_mean=1e-2),
                    "int8": Tolerance(max_abs=None, min_psnr=30.0, max_rel_mean=5e-2)}


def _verify_engine(args, header, plan: bytes, meta) -> dict | str:
    """Run the fresh engine on the verification inputs and gate it like any other artifact."""
    from artcam.runtime.backends.trt import TrtRunner
    from artcam.runtime.errors import InputError

    vfeeds, refs, labels = args._verify
    try:
        runner = TrtRunner(plan, header, "new engine").activate()
    except ArtcamError as e:  # e.g. cuda-python missing: say so in the report, do not pretend
        print(f"engine not verified: {e}")
        return f"skipped: {e}"
    try:
        got = [{k: v.copy() for k, v in runner.infer(f).items()} for f in vfeeds]
    except InputError as e:
        return f"skipped: verification inputs do not fit the profile ({e})"
    finally:
        runner.deactivate()
    cmp = parity.compare(f"TensorRT {header.precision} engine vs ONNX FP32", refs, got, meta,
                         ENGINE_TOLERANCE[header.precision], labels=labels)
    _gate(cmp, args)
    return cmp.to_dict()


def _write(args, src: Source, data: bytes, meta, precision: str, report: dict) -> Path:
    from artcam.runtime.fileio import atomic_write_bytes
    from artcam.runtime.modelfile import write_model_file

    if args.format == "onnx":
        out = _default_out(args, src.stem, ".onnx")
        if meta is not None:
            write_model_file(out, data, meta)
        else:
            atomic_write_bytes(out, data)
        return out
    if args.format == "engine":
        from artcam.runtime.backends.engine_file import write_engine_file

        header, plan = _build_plan(args, data, meta, precision)
        report["engine_vs_fp32"] = _verify_engine(args, header, plan, meta)
        out = _default_out(args, src.stem, ".engine")
        write_engine_file(out, header, plan)
        report["engine"] = json.loads(header.to_json())
        return out
    from .triton import write_triton_model

    name = args.name or (meta.name if meta is not None else src.stem)
    kind_gpu = args.device not in ("cpu",)
    params = {"artcam.task": meta.task, "artcam.precision": precision} if meta is not None else {}
    if args.triton_plan:
        args.max_batch = max(args.max_batch, args.triton_max_batch)  # the profile must admit Triton's batches
        _, plan = _build_plan(args, data, meta, precision)
        blob, kind = plan, "plan"  # Triton's TensorRT backend loads raw plans (no artcam header)
    else:
        from artcam.runtime.modelfile import with_metadata

        blob, kind = (with_metadata(data, meta.to_props()) if meta is not None else data), "onnx"
    return write_triton_model(Path(args.out or "triton_repo"), name, blob, kind, data,
                              max_batch_size=args.triton_max_batch, instance_count=args.instances,
                              instance_kind="KIND_GPU" if kind_gpu else "KIND_CPU", parameters=params)


if __name__ == "__main__":
    from artcam.runtime.cli import main as artcam_main

    sys.exit(artcam_main(["export", *sys.argv[1:]]))
