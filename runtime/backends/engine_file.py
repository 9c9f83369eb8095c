"""TensorRT engine files with an artcam header, the engine cache, and optimisation profiles.

No TensorRT, CUDA or torch here: the runtime reads headers to decide whether a plan can run on
this machine *before* handing it to TensorRT (which would otherwise fail with an opaque message
or crash on a plan from another version or GPU).

File layout::

    b"ARTCAMTRT\\x00"  (10 bytes)  |  u32 LE format version  |  u32 LE header length  |
    header JSON (UTF-8)  |  TensorRT plan bytes
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import InputError, ModelError

MAGIC = b"ARTCAMTRT\x00"
FORMAT_VERSION = 1
_FIXED = struct.Struct("<II")
MAX_HEADER_BYTES = 16 << 20
PRECISIONS = ("fp32", "fp16", "int8")

# Shape = tuple of ints; a profile maps each dynamic input to its (min, opt, max) shapes.
Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]


class EngineError(ModelError):
    """An engine that cannot run here (other TensorRT version or GPU, corrupt file, bad profile)."""


# --- header ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineHeader:
    """What a plan was built with and for; the cache key is derived from these fields."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "8.6"
    precision: str  # fp32 | fp16 | int8 (int8 = a Q/DQ network)
    profiles: tuple[Profile, ...] = ()
    onnx_hash: str = ""  # sha256 of the exact ONNX bytes the plan was built from
    meta: Mapping[str, str] = field(default_factory=dict)  # artcam metadata_props of the source
    strongly_typed: bool = False
    version_compatible: bool = False
    hardware_compatible: bool = False  # AMPERE_PLUS
    workspace_mb: int = 0
    builder: str = "artcam"

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["profiles"] = [profile_to_json(p) for p in self.profiles]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EngineHeader":
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown header fields {sorted(unknown)}")
        d["profiles"] = tuple(profile_from_json(p) for p in d.get("profiles", []))
        return cls(**d)

    def cache_key(self) -> str:
        """Everything that makes two plans interchangeable; not the metadata or workspace."""
        return cache_key(
            onnx_hash=self.onnx_hash, trt_version=self.trt_version, gpu_name=self.gpu_name,
            compute_capability=self.compute_capability, precision=self.precision, profiles=self.profiles,
            strongly_typed=self.strongly_typed, version_compatible=self.version_compatible,
            hardware_compatible=self.hardware_compatible,
        )

    def describe(self) -> str:
        flags = [f for f, on in (("version-compatible", self.version_compatible),
                                 ("hardware-compatible", self.hardware_compatible),
                                 ("strongly typed", self.strongly_typed)) if on]
        extra = f", {', '.join(flags)}" if flags else ""
        return (f"TensorRT {self.trt_version}, {self.gpu_name} (compute {self.compute_capability}), "
                f"{self.precision}{extra}")


def cache_key(
    *, onnx_hash: str, trt_version: str, gpu_name: str, compute_capability: str, precision: str,
    profiles: Sequence[Profile], strongly_typed: bool = False, version_compatible: bool = False,
    hardware_compatible: bool = False,
) -> str:
    # A hardware-compatible plan runs on any Ampere+ GPU, so the GPU does not key it; a
    # version-compatible one runs on later TensorRT of the same major, so only the major keys it.
    d = {
        "onnx": onnx_hash,
        "trt": trt_version.split(".")[0] if version_compatible else trt_version,
        "gpu": "ampere+" if hardware_compatible else f"{gpu_name}|{compute_capability}",
        "precision": precision,
        "profiles": [profile_to_json(p) for p in profiles],
        "typed": bool(strongly_typed),
    }
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:20]


def onnx_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pack_engine(header: EngineHeader, plan: bytes) -> bytes:
    h = header.to_json().encode("utf-8")
    return MAGIC + _FIXED.pack(FORMAT_VERSION, len(h)) + h + bytes(plan)


def _parse_prefix(prefix: bytes, where: str) -> tuple[int, int]:
    """Return (header length, header offset) from the first bytes of an engine file."""
    n = len(MAGIC) + _FIXED.size
    if len(prefix) < n or not prefix.startswith(MAGIC):
        raise EngineError(f"{where} is not an artcam engine file (no artcam header)",
                          "build it with `artcam export MODEL.onnx --format engine`; raw trtexec plans carry no header")
    version, length = _FIXED.unpack(prefix[len(MAGIC):n])
    if version > FORMAT_VERSION:
        raise EngineError(f"{where} uses engine file format {version}, newer than this artcam ({FORMAT_VERSION})",
                          "upgrade artcam or rebuild the engine")
    if length > MAX_HEADER_BYTES:
        raise EngineError(f"{where}: engine header length {length} is implausible; the file is corrupt",
                          "rebuild the engine")
    return length, n


def _parse_header(raw: bytes, where: str) -> EngineHeader:
    try:
        return EngineHeader.from_json(raw.decode("utf-8"))
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise EngineError(f"{where}: engine header is corrupt ({e})", "rebuild the engine") from e


def unpack_engine(data: bytes, where: str = "engine") -> tuple[EngineHeader, bytes]:
    length, off = _parse_prefix(data[: len(MAGIC) + _FIXED.size], where)
    if len(data) < off + length:
        raise EngineError(f"{where} is truncated (header cut short)", "rebuild the engine")
    header = _parse_header(data[off : off + length], where)
    plan = data[off + length :]
    if not plan:
        raise EngineError(f"{where} holds a header but no TensorRT plan (truncated)", "rebuild the engine")
    return header, plan


def read_engine_header(path: str | os.PathLike) -> EngineHeader:
    """Only the header: cheap, so the cache can check many files without reading plans."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"engine file not found: {path}")
    with open(path, "rb") as f:
        length, off = _parse_prefix(f.read(len(MAGIC) + _FIXED.size), str(path))
        raw = f.read(length)
    if len(raw) < length:
        raise EngineError(f"{path} is truncated (header cut short)", "rebuild the engine")
    return _parse_header(raw, str(path))


def read_engine_file(path: str | os.PathLike) -> tuple[EngineHeader, bytes]:
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"engine file not found: {path}")
    return unpack_engine(path.read_bytes(), str(path))


def write_engine_file(path: str | os.PathLike, header: EngineHeader, plan: bytes) -> Path:
    from ..fileio import atomic_write_bytes

    return atomic_write_bytes(path, pack_engine(header, plan))


# --- compatibility -----------------------------------------------------------------------------


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def compatibility_problem(header: EngineHeader, trt_version: str, gpu_name: str, compute_capability: str) -> str | None:
    """Why a plan cannot run with this TensorRT on this GPU, or None when it can."""
    built, here = _version_tuple(header.trt_version), _version_tuple(trt_version)
    if header.version_compatible:
        if here < built:
            return (f"it was built with TensorRT {header.trt_version} (version-compatible), which is newer than "
                    f"this machine's TensorRT {trt_version}")
    elif built != here:
        return f"it was built with TensorRT {header.trt_version}, this machine has TensorRT {trt_version}"
    cc_built, cc_here = _version_tuple(header.compute_capability), _version_tuple(compute_capability)
    if header.hardware_compatible:
        if cc_here < (8, 0):
            return f"it is hardware-compatible for Ampere or newer GPUs, this GPU ({gpu_name}) has compute {compute_capability}"
    elif cc_built != cc_here:
        return (f"it was built for {header.gpu_name} (compute {header.compute_capability}), "
                f"this GPU is {gpu_name} (compute {compute_capability})")
    return None


def check_compatible(header: EngineHeader, trt_version: str, gpu_name: str, compute_capability: str,
                     where: str = "engine") -> None:
    why = compatibility_problem(header, trt_version, gpu_name, compute_capability)
    if why:
        raise EngineError(
            f"{where} cannot run here: {why}",
            "rebuild it on this machine from the ONNX model (`artcam export MODEL.onnx --format engine`), "
            "or run the .onnx with --backend tensorrt, which builds and caches a matching engine",
        )


# --- profiles ----------------------------------------------------------------------------------


def profile_to_json(p: Profile) -> dict[str, dict[str, list[int]]]:
    return {name: {"min": list(mn), "opt": list(op), "max": list(mx)} for name, (mn, op, mx) in sorted(p.items())}


def profile_from_json(d: Mapping[str, Mapping[str, Sequence[int]]]) -> Profile:
    return {name: (tuple(v["min"]), tuple(v["opt"]), tuple(v["max"])) for name, v in d.items()}


def validate_profile(profile: Profile, inputs: Mapping[str, Sequence[Any]]) -> None:
    """``inputs`` maps each network input to its declared shape (ints, or -1/None/str for dynamic dims).

    Every input with a dynamic dim needs min <= opt <= max shapes of the right rank that keep the
    fixed dims; an unknown input name is an error too (a typo would otherwise be ignored).
    """
    for name in profile:
        if name not in inputs:
            raise InputError(f"profile names input {name!r}, the model's inputs are {sorted(inputs)}")
    for name, decl in inputs.items():
        dynamic = [i for i, d in enumerate(decl) if not isinstance(d, int) or d < 0]
        if name not in profile:
            if dynamic:
                raise InputError(f"input {name!r} has dynamic dims {list(decl)} but no min/opt/max shapes",
                                 "pass --imgsz H W, or --min-shape/--opt-shape/--max-shape for it")
            continue
        mn, op, mx = profile[name]
        for label, s in (("min", mn), ("opt", op), ("max", mx)):
            if len(s) != len(decl):
                raise InputError(f"{label} shape {list(s)} of input {name!r} has {len(s)} dims, the model has "
                                 f"{len(decl)} {list(decl)}")
            if any(int(x) < 1 for x in s):
                raise InputError(f"{label} shape {list(s)} of input {name!r} has a dim below 1")
            for i, d in enumerate(decl):
                if isinstance(d, int) and d >= 0 and s[i] != d:
                    raise InputError(f"{label} shape {list(s)} of input {name!r} changes fixed dim {i} "
                                     f"(the model says {d})")
        for i in range(len(decl)):
            if not mn[i] <= op[i] <= mx[i]:
                raise InputError(f"input {name!r}: need min <= opt <= max in every dim, got min {list(mn)} "
                                 f"opt {list(op)} max {list(mx)}")


def select_profile(profiles: Sequence[Profile], shapes: Mapping[str, Sequence[int]]) -> int:
    """Index of the first profile that admits every input shape; InputError saying which fits best."""
    if not profiles:
        return 0
    for i, p in enumerate(profiles):
        if all(_inside(shapes[n], *p[n]) for n in p if n in shapes):
            return i
    lines = []
    for n, shape in shapes.items():
        ranges = [f"{list(p[n][0])}..{list(p[n][2])}" for p in profiles if n in p]
        if ranges:
            lines.append(f"{n} {list(shape)} (engine accepts {' or '.join(ranges)})")
    raise InputError("input shape outside the engine's optimisation profiles: " + "; ".join(lines),
                     "resize the input, or rebuild the engine with a larger --max-shape")


def _inside(shape: Sequence[int], mn: Shape, _opt: Shape, mx: Shape) -> bool:
    return len(shape) == len(mn) and all(a <= s <= b for s, a, b in zip(shape, mn, mx))


def profile_for_image_model(
    inputs: Mapping[str, Sequence[Any]],
    *,
    imgsz: tuple[int, int] | None = None,
    min_hw: tuple[int, int] | None = None,
    opt_hw: tuple[int, int] | None = None,
    max_hw: tuple[int, int] | None = None,
    max_batch: int = 1,
    opt_batch: int = 1,
) -> Profile:
    """A profile for NCHW image models: batch 1..max_batch, spatial dims from --imgsz or min/opt/max.

    Non-image inputs (style weights, latents) follow the batch range with their other dims fixed.
    """
    if imgsz is not None:
        min_hw = min_hw or imgsz
        opt_hw = opt_hw or imgsz
        max_hw = max_hw or imgsz
    profile: Profile = {}
    for name, decl in inputs.items():
        dyn = [not isinstance(d, int) or d < 0 for d in decl]
        if not any(dyn):
            continue
        if len(decl) == 4 and any(dyn[2:]):
            if not (min_hw and opt_hw and max_hw):
                raise InputError(f"input {name!r} has dynamic height/width", "pass --imgsz H W or --min/--opt/--max-shape")
            def full(hw, b):
                return (b if dyn[0] else decl[0], 3 if dyn[1] else decl[1], *hw)
            profile[name] = (full(min_hw, 1), full(opt_hw, opt_batch), full(max_hw, max_batch))
        else:
            others = []
            for i, d in enumerate(decl[1:], 1):
                if dyn[i]:
                    raise InputError(f"input {name!r} has dynamic dim {i} {list(decl)}; only batch can be inferred",
                                     "pass --min-shape/--opt-shape/--max-shape NAME:d0xd1x...")
                others.append(d)
            def shp(b):
                return ((b if dyn[0] else decl[0]),) + tuple(others)
            profile[name] = (shp(1), shp(opt_batch), shp(max_batch))
    return profile


def parse_shape_arg(text: str) -> dict[str, Shape]:
    """``image:1x3x256x256,style:1x8`` -> {"image": (1,3,256,256), "style": (1,8)} (Polygraphy's syntax)."""
    out: dict[str, Shape] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, dims = item.rpartition(":")
        if not sep or not name:
            raise InputError(f"shape {item!r} is not NAME:D0xD1x...", "e.g. image:1x3x480x640")
        try:
            out[name] = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError as e:
            raise InputError(f"shape {item!r} has a dim that is not an integer", "e.g. image:1x3x480x640") from e
    return out


# --- engine cache -----------------------------------------------------------------------------


def default_cache_dir() -> Path:
    env = os.environ.get("ARTCAM_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "artcam" / "engines"


class EngineCache:
    """A folder of ``<model>-<key>.engine`` files; the key covers everything a plan depends on."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder else default_cache_dir()

    def path_for(self, name: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"
        return self.folder / f"{safe}-{key}.engine"

    def find(self, name: str, key: str, trt_version: str, gpu_name: str, compute_capability: str) -> Path | None:
        """The cached plan for ``key`` if it is intact and runnable here; a bad one is ignored (rebuilt)."""
        p = self.path_for(name, key)
        if not p.is_file():
            return None
        try:
            header = read_engine_header(p)
        except EngineError:
            return None
        if header.cache_key() != key or compatibility_problem(header, trt_version, gpu_name, compute_capability):
            return None
        return p

    def others(self, name: str, key: str) -> list[tuple[Path, str]]:
        """Other cached plans of the same model and why each does not match (for messages)."""
        out = []
        for p in sorted(self.folder.glob(f"{self.path_for(name, 'x').stem[:-1]}*.engine")):
            if p.name == self.path_for(name, key).name:
                continue
            try:
                out.append((p, read_engine_header(p).describe()))
            except EngineError as e:
                out.append((p, e.message))
        return out

    def store(self, name: str, header: EngineHeader, plan: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return write_engine_file(self.path_for(name, header.cache_key()), header, plan)


# --- ONNX Runtime's TensorRT execution provider ------------------------------------------------


def trt_ep_options(cache_dir: str | os.PathLike | None = None, fp16: bool = False,
                   workspace_mb: int = 2048) -> dict[str, object]:
    """Provider options for ORT's TensorrtExecutionProvider: engine + timing caches on disk, FP16.

    ORT keys its own engine cache by model and input shapes; it rebuilds when those change.
    """
    folder = Path(cache_dir) if cache_dir else default_cache_dir() / "ort"
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(folder),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(folder),
        "trt_fp16_enable": bool(fp16),
        "trt_max_workspace_size": int(workspace_mb) << 20,
    }
