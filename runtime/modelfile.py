"""The artcam model file: one ONNX file whose ``metadata_props`` say how to feed it and read it.

Keys are ``artcam.<field>`` with JSON values, so Netron shows them and any ONNX tool keeps them.
Reading needs no ``onnx`` package: ONNX Runtime returns the map, and the content hash is computed
on the protobuf wire format directly (every top-level ModelProto field except ``metadata_props``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ModelError

SCHEMA_VERSION = 1
TASKS = ("classify", "stylize", "generate")
PREFIX = "artcam."
_METADATA_PROPS_FIELD = 14  # ModelProto.metadata_props


@dataclass(frozen=True)
class ImageInput:
    """An image input: how a BGR uint8 frame becomes this tensor."""

    name: str = "image"
    layout: str = "NCHW"  # NCHW | NHWC
    dtype: str = "float32"  # float32 | float16 | uint8
    color: str = "RGB"  # RGB | BGR
    range: tuple[float, float] = (0.0, 1.0)  # values of black and white before mean/std
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    fixed_size: tuple[int, int] | None = None  # (H, W) the model requires, or None for any size
    min_size: int = 16  # shorter side, pixels
    max_size: int = 4096  # longer side, pixels
    multiple: int = 1  # H and W must be multiples of this
    resize: str = "stretch"  # stretch | center_crop | pad: how a frame meets fixed_size


@dataclass(frozen=True)
class StyleInput:
    """A per-style weight vector (one weight per trained style); blends and switches styles live."""

    name: str = "style"
    styles: tuple[str, ...] = ()


@dataclass(frozen=True)
class LatentInput:
    name: str = "z"
    size: int = 128
    distribution: str = "normal"


@dataclass(frozen=True)
class ClassInput:
    """A one-hot class vector for class-conditional generators."""

    name: str = "class"
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogitsOutput:
    """A classification head. ``kind`` says whether softmax is still to be applied."""

    name: str
    labels: tuple[str, ...]
    kind: str = "logits"  # logits | probs
    head: str = ""  # display name of the head, e.g. "objects" or "style"


@dataclass(frozen=True)
class ImageOutput:
    name: str = "image"
    layout: str = "NCHW"
    color: str = "RGB"
    range: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class ModelMeta:
    """Everything the runtime needs to drive a model; validated on construction."""

    task: str
    name: str
    image: ImageInput | None = None
    style: StyleInput | None = None
    latent: LatentInput | None = None
    classes: ClassInput | None = None
    heads: tuple[LogitsOutput, ...] = ()
    output: ImageOutput | None = None
    description: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        validate(self)

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels of the first head (most classifiers have one)."""
        return self.heads[0].labels if self.heads else ()

    @property
    def styles(self) -> tuple[str, ...]:
        return self.style.styles if self.style else ()

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` entries (without the content hash, which the writer adds)."""
        d = dataclasses.asdict(self)
        d.pop("content_hash")
        return {PREFIX + k: json.dumps(v) for k, v in d.items() if v not in (None, (), [], {}, "")}

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description for ``artcam models --json``."""
        d: dict[str, Any] = {"name": self.name, "task": self.task}
        if self.heads:
            d["labels"] = {h.head or h.name: list(h.labels) for h in self.heads}
        if self.style:
            d["styles"] = list(self.style.styles)
        if self.latent:
            d["latent_size"] = self.latent.size
        if self.classes:
            d["classes"] = list(self.classes.labels)
        if self.image:
            d["input"] = dataclasses.asdict(self.image)
        d["content_hash"] = self.content_hash
        return d


def _fail(msg: str) -> None:
    raise ModelError(f"invalid artcam metadata: {msg}")


def validate(m: ModelMeta) -> None:
    if m.schema > SCHEMA_VERSION:
        _fail(f"schema {m.schema} is newer than this artcam understands ({SCHEMA_VERSION}); upgrade artcam")
    if m.task not in TASKS:
        _fail(f"task {m.task!r} is not one of {', '.join(TASKS)}")
    if not m.name:
        _fail("empty model name")
    im = m.image
    if im is not None:
        if im.layout not in ("NCHW", "NHWC"):
            _fail(f"input layout {im.layout!r} is not NCHW or NHWC")
        if im.dtype not in ("float32", "float16", "uint8"):
            _fail(f"input dtype {im.dtype!r} is not float32, float16 or uint8")
        if im.color not in ("RGB", "BGR"):
            _fail(f"colour order {im.color!r} is not RGB or BGR")
        if len(im.mean) != 3 or len(im.std) != 3:
            _fail("mean and std need 3 values each")
        if any(s == 0 for s in im.std):
            _fail("std has a zero")
        if im.range[0] == im.range[1]:
            _fail("pixel range is empty")
        if im.multiple < 1 or im.min_size < 1 or im.max_size < im.min_size:
            _fail(f"size limits min={im.min_size} max={im.max_size} multiple={im.multiple} are inconsistent")
        if im.fixed_size is not None and (len(im.fixed_size) != 2 or min(im.fixed_size) < 1):
            _fail(f"fixed size {im.fixed_size} is not (H, W)")
        if im.resize not in ("stretch", "center_crop", "pad"):
            _fail(f"resize mode {im.resize!r} is not stretch, center_crop or pad")
    if m.task == "classify":
        if im is None:
            _fail("a classifier needs an image input")
        if not m.heads:
            _fail("a classifier needs at least one labelled output")
        for h in m.heads:
            if not h.labels:
                _fail(f"output {h.name!r} has no labels")
            if h.kind not in ("logits", "probs"):
                _fail(f"output {h.name!r} kind {h.kind!r} is not logits or probs")
    elif m.task == "stylize":
        if im is None or m.output is None:
            _fail("a stylizer needs an image input and an image output")
        if m.style is not None and not m.style.styles:
            _fail("a style input needs at least one style name")
    elif m.task == "generate":
        if m.latent is None or m.output is None:
            _fail("a generator needs a latent input and an image output")
        if m.latent.size < 1:
            _fail(f"latent size {m.latent.size} must be positive")
    if m.output is not None and m.output.range[0] == m.output.range[1]:
        _fail("output range is empty")


def _tuples(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def _build(cls: type, d: Any, key: str) -> Any:
    if d is None:
        return None
    if not isinstance(d, dict):
        _fail(f"{key} should be an object, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        _fail(f"{key} has unknown fields {sorted(unknown)}")
    try:
        return cls(**{k: _tuples(v) for k, v in d.items()})
    except TypeError as e:
        _fail(f"{key}: {e}")


def from_props(props: Mapping[str, str], content_hash: str = "") -> ModelMeta | None:
    """Parse ``metadata_props``; None if the model carries no artcam metadata at all."""
    ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
    if not ours:
        return None
    try:
        d = {k: json.loads(v) for k, v in ours.items()}
    except json.JSONDecodeError as e:
        raise ModelError(f"invalid artcam metadata: a value is not JSON ({e})") from e
    if "task" not in d or "name" not in d:
        _fail("task and name are required")
    stored_hash = d.pop("content_hash", "")
    known = {f.name for f in dataclasses.fields(ModelMeta)}
    if set(d) - known:
        _fail(f"unknown fields {sorted(set(d) - known)}")
    return ModelMeta(
        task=d["task"],
        name=d["name"],
        image=_build(ImageInput, d.get("image"), "image"),
        style=_build(StyleInput, d.get("style"), "style"),
        latent=_build(LatentInput, d.get("latent"), "latent"),
        classes=_build(ClassInput, d.get("classes"), "classes"),
        heads=tuple(_build(LogitsOutput, h, "heads") for h in d.get("heads", [])),
        output=_build(ImageOutput, d.get("output"), "output"),
        description=d.get("description", ""),
        provenance=d.get("provenance", {}),
        schema=int(d.get("schema", SCHEMA_VERSION)),
        content_hash=content_hash or stored_hash,
    )


# --- protobuf wire format: enough to hash a ModelProto and read/write its metadata_props ---------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes):
    """Yield (field_number, wire_type, start, end) for each top-level field of a message."""
    i, n = 0, len(buf)
    while i < n:
        start = i
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == 0:
            _, i = _varint(buf, i)
        elif wt == 1:
            i += 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            i += ln
        elif wt == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        if i > n:
            raise ValueError("truncated field")
        yield num, wt, start, i


def _payload(buf: bytes, start: int) -> bytes:
    _, i = _varint(buf, start)
    ln, i = _varint(buf, i)
    return buf[i : i + ln]


def parse_model_bytes(data: bytes) -> tuple[str, dict[str, str]]:
    """Return (content hash, metadata_props) of a serialized ONNX ModelProto.

    Raises ValueError when the bytes are not a well-formed protobuf message.
    """
    h = hashlib.sha256()
    props: dict[str, str] = {}
    saw_graph = False
    for num, wt, start, end in _fields(data):
        if num == _METADATA_PROPS_FIELD and wt == 2:
            entry = _payload(data, start)
            kv = {}
            for n2, wt2, s2, _e2 in _fields(entry):
                if wt2 == 2:
                    kv[n2] = _payload(entry, s2).decode("utf-8", "replace")
            props[kv.get(1, "")] = kv.get(2, "")
        else:
            saw_graph |= num == 7  # ModelProto.graph
            h.update(data[start:end])
    if not saw_graph:
        raise ValueError("no graph in the file")
    return "sha256:" + h.hexdigest(), props


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _len_field(num: int, payload: bytes) -> bytes:
    return _encode_varint((num << 3) | 2) + _encode_varint(len(payload)) + payload


def with_metadata(data: bytes, props: Mapping[str, str]) -> bytes:
    """Return model bytes with artcam props (and a fresh content hash) replacing any old artcam props.

    Works on the wire format, so the runtime can attach metadata to a foreign model without ``onnx``.
    """
    kept = bytearray()
    for num, wt, start, end in _fields(data):
        if num == _METADATA_PROPS_FIELD and wt == 2:
            entry = _payload(data, start)
            key = next((_payload(entry, s).decode() for n, w, s, _ in _fields(entry) if n == 1 and w == 2), "")
            if key.startswith(PREFIX):
                continue
        kept += data[start:end]
    digest, _ = parse_model_bytes(bytes(kept))
    all_props = dict(props)
    all_props[PREFIX + "content_hash"] = json.dumps(digest)
    for k, v in all_props.items():
        entry = _len_field(1, k.encode()) + _len_field(2, v.encode())
        kept += _len_field(_METADATA_PROPS_FIELD, entry)
    return bytes(kept)


def read_model_file(path: str | Path) -> tuple[bytes, ModelMeta | None]:
    """Read an ONNX file, check its content hash, and parse its artcam metadata (None if foreign)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}", "run `artcam models` to list the shipped models")
    data = path.read_bytes()
    try:
        digest, props = parse_model_bytes(data)
    except ValueError as e:
        raise ModelError(f"{path} is not a valid ONNX model ({e})", "re-export or re-download it") from e
    meta = from_props(props, content_hash=digest)
    stored = props.get(PREFIX + "content_hash")
    if meta is not None and stored is not None and json.loads(stored) != digest:
        raise ModelError(
            f"{path} is corrupt or was modified: its content hash does not match its metadata",
            "re-export the model, or re-attach metadata with the exporter",
        )
    return data, meta


def write_model_file(path: str | Path, data: bytes, meta: ModelMeta) -> Path:
    """Attach ``meta`` to serialized model bytes and write them atomically."""
    from .fileio import atomic_write_bytes

    return atomic_write_bytes(path, with_metadata(data, meta.to_props()))


def foreign_meta(
    name: str,
    task: str | None,
    *,
    input_name: str,
    output_names: Sequence[str],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    pixel_range: Sequence[float] | None = None,
    color: str | None = None,
    layout: str | None = None,
    size: Sequence[int] | None = None,
    multiple: int | None = None,
    latent_size: int | None = None,
) -> ModelMeta:
    """Describe a model without artcam metadata from explicit flags; name the flag that is missing."""
    if task is None:
        raise ModelError(
            f"{name} has no artcam metadata",
            "pass --task classify|stylize|generate (and --mean/--std/--labels as needed)",
        )
    image = ImageInput(
        name=input_name,
        layout=layout or "NCHW",
        color=color or "RGB",
        range=tuple(pixel_range) if pixel_range else (0.0, 1.0),
        mean=tuple(mean) if mean else (0.0, 0.0, 0.0),
        std=tuple(std) if std else (1.0, 1.0, 1.0),
        fixed_size=tuple(size) if size else None,
        multiple=multiple or 1,
        resize="center_crop" if task == "classify" else "stretch",
    )
    if task == "classify":
        if not labels:
            raise ModelError(f"{name} has no artcam metadata and no labels", "pass --labels FILE (one label per line)")
        return ModelMeta(task=task, name=name, image=image, heads=(LogitsOutput(output_names[0], tuple(labels)),))
    if task == "stylize":
        return ModelMeta(task=task, name=name, image=image, output=ImageOutput(output_names[0], range=image.range))
    if task == "generate":
        if not latent_size:
            raise ModelError(f"{name} has no artcam metadata", "pass --latent-size N for a generator")
        return ModelMeta(
            task=task, name=name, latent=LatentInput(input_name, latent_size),
            output=ImageOutput(output_names[0], range=(-1.0, 1.0)),
        )
    raise ModelError(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
