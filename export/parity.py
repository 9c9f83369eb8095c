"""Inputs for verification/calibration, and the per-output comparison report (Polygraphy-style).

Images are real files from a folder (``--data``) or, by default, a few deterministic synthetic ones.
They go through the runtime's own preprocessing driven by the model's metadata, so calibration and
verification see exactly what the deployed model will see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from artcam.runtime.errors import InputError
from artcam.runtime.fileio import IMAGE_EXTENSIONS, read_image
from artcam.runtime.modelfile import ModelMeta

MIN_CALIBRATION_IMAGES = 8


# --- images ------------------------------------------------------------------------------------


def synthetic_images(n: int = 4, size: tuple[int, int] = (240, 320), seed: int = 0) -> list[np.ndarray]:
    """Smooth gradients, edges and texture: exercises the value ranges a photo does, without files."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        img = np.empty((h, w, 3), np.float32)
        for c in range(3):
            fx, fy, ph = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 2 * np.pi)
            img[..., c] = 127 + 100 * np.sin(2 * np.pi * (fx * xx / w + fy * yy / h) + ph)
        for _ in range(6):
            color = tuple(float(v) for v in rng.integers(0, 256, 3))
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(img, center, int(rng.integers(5, max(6, min(h, w) // 3))), color, -1)
        img += rng.normal(0, 6 + 4 * i, img.shape).astype(np.float32)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def list_image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"data folder not found: {folder}", "pass --data DIR with images in it (subfolders allowed)")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items evenly spaced over a sorted list: every class subfolder gets its share."""
    if n >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def load_images(folder: str | Path, n: int, minimum: int = MIN_CALIBRATION_IMAGES) -> tuple[list[np.ndarray], list[Path]]:
    return load_images_from(list_image_files(folder), n, folder, minimum)


def load_images_from(files: Sequence[Path], n: int, where: str | Path,
                     minimum: int = MIN_CALIBRATION_IMAGES) -> tuple[list[np.ndarray], list[Path]]:
    """Read up to ``n`` images spread over ``files``; unreadable ones are skipped and counted."""
    images, used, bad = [], [], []
    for p in spread(files, n) if files else []:
        try:
            images.append(read_image(p))
            used.append(p)
        except InputError:
            bad.append(p.name)
    if len(images) < min(minimum, n):
        why = f"{len(files)} image files" + (f", {len(bad)} unreadable ({', '.join(bad[:3])})" if bad else "")
        raise InputError(f"{where} has only {len(images)} readable images for calibration/verification ({why}); "
                         f"need at least {min(minimum, n)}", "point --data at a folder of real images (jpg/png)")
    return images, used


# --- feeds -------------------------------------------------------------------------------------


def _preprocessor(meta: ModelMeta):
    from artcam.runtime.processing import ImagePreprocessor

    return ImagePreprocessor(meta.image)


def _resize_free(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    if size is None:
        return img
    h, w = size
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR)


def make_feeds(
    meta: ModelMeta | None,
    inputs: Mapping[str, tuple[Sequence[Any], np.dtype]],
    images: Sequence[np.ndarray],
    size: tuple[int, int] | None = (256, 256),
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """One feed dict (batch 1) per image; ``inputs`` maps name -> (declared shape, dtype).

    Style inputs cycle through one-hot styles with every fourth a blend; latents are seeded normals;
    a model without artcam metadata gets the images scaled to [0, 1] NCHW.
    """
    rng = np.random.default_rng(seed)
    feeds = []
    pre = _preprocessor(meta) if meta is not None and meta.image is not None else None
    for i, img in enumerate(images):
        feed: dict[str, np.ndarray] = {}
        for name, (shape, dtype) in inputs.items():
            dtype = np.dtype(dtype)
            if meta is not None and meta.image is not None and name == meta.image.name:
                src = img if meta.image.fixed_size else _resize_free(img, size)
                feed[name] = np.ascontiguousarray(pre(src)).astype(dtype, copy=True)
            elif meta is not None and meta.style is not None and name == meta.style.name:
                s = len(meta.style.styles)
                v = np.zeros((1, s), dtype)
                if i % 4 == 3 and s > 1:
                    v[0] = rng.dirichlet(np.ones(s))
                else:
                    v[0, i % s] = 1
                feed[name] = v
            elif meta is not None and meta.latent is not None and name == meta.latent.name:
                feed[name] = rng.standard_normal((1, meta.latent.size)).astype(dtype)
            elif meta is not None and meta.classes is not None and name == meta.classes.name:
                c = len(meta.classes.labels)
                v = np.zeros((1, c), dtype)
                v[0, i % c] = 1
                feed[name] = v
            else:
                feed[name] = _generic_input(name, shape, dtype, img, size, rng)
        feeds.append(feed)
    return feeds


def _generic_input(name, shape, dtype, img, size, rng) -> np.ndarray:
    import cv2

    dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(dims) == 4 and dims[1] in (1, 3, None):
        h = dims[2] or (size or (256, 256))[0]
        w = dims[3] or (size or (256, 256))[1]
        rgb = cv2.cvtColor(cv2.resize(img, (w, h)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        t = rgb.transpose(2, 0, 1)[None]
        if dims[1] == 1:
            t = t.mean(1, keepdims=True)
        return t.astype(dtype)
    concrete = [1 if i == 0 and d is None else (d or 8) for i, d in enumerate(dims)]
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(concrete).astype(dtype)
    raise InputError(f"cannot make verification data for input {name!r} {shape} of type {dtype}",
                     "export with --no-verify, or give the model artcam metadata")


def labels_for(paths: Sequence[Path], root: Path, labels: Sequence[str]) -> list[int] | None:
    """Class index per image from its top-level subfolder when those are this head's labels."""
    index = {label.lower(): i for i, label in enumerate(labels)}
    out = []
    for p in paths:
        rel = p.relative_to(root).parts
        if len(rel) < 2 or rel[0].lower() not in index:
            return None
        out.append(index[rel[0].lower()])
    return out


# --- comparison --------------------------------------------------------------------------------


@dataclass
class Tolerance:
    """Limits an artifact must meet; None disables a check."""

    max_abs: float | None = 1e-4
    mean_abs: float | None = None
    min_psnr: float | None = None
    min_top1_agree: float | None = None
    max_rel_mean: float | None = None  # mean |err| / mean |ref|, for outputs that are neither images nor logits


@dataclass
class OutputReport:
    name: str
    kind: str  # image | logits | tensor
    max_abs: float
    mean_abs: float
    psnr: float | None = None
    top1_agree: float | None = None
    rel_mean: float | None = None
    top1_agree_confident: float | None = None  # where the reference's top-1 softmax >= 0.5
    confident_samples: int | None = None
    ref_top1_acc: float | None = None
    test_top1_acc: float | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        parts = [f"max_abs={self.max_abs:.3g}", f"mean_abs={self.mean_abs:.3g}"]
        if self.psnr is not None:
            parts.append(f"psnr={self.psnr:.1f}dB")
        if self.rel_mean is not None:
            parts.append(f"rel_mean={self.rel_mean:.3g}")
        if self.top1_agree is not None:
            parts.append(f"top1_agree={100 * self.top1_agree:.1f}%")
        if self.top1_agree_confident is not None:
            parts.append(f"(p>=0.5: {100 * self.top1_agree_confident:.1f}% of {self.confident_samples})")
        if self.ref_top1_acc is not None:
            parts.append(f"top1_acc ref={100 * self.ref_top1_acc:.1f}% test={100 * self.test_top1_acc:.1f}%")
        status = "PASS" if self.passed else "FAIL (" + "; ".join(self.failures) + ")"
        return f"  [{status}] {self.name} ({self.kind}): " + " ".join(parts)


@dataclass
class Comparison:
    title: str
    samples: int
    outputs: list[OutputReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def lines(self) -> list[str]:
        verdict = "PASSED" if self.passed else "FAILED"
        return [f"{self.title}: {verdict} on {self.samples} input(s)"] + [o.line() for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "samples": self.samples, "passed": self.passed,
            "outputs": {o.name: {k: v for k, v in o.__dict__.items() if k != "name" and v is not None}
                        for o in self.outputs},
        }


def psnr(ref: np.ndarray, got: np.ndarray, peak: float) -> float:
    mse = float(np.mean((ref.astype(np.float64) - got.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def output_kinds(meta: ModelMeta | None) -> dict[str, tuple[str, float]]:
    """name -> (kind, peak value range) from metadata."""
    kinds: dict[str, tuple[str, float]] = {}
    if meta is None:
        return kinds
    for h in meta.heads:
        kinds[h.name] = ("logits", 0.0)
    if meta.output is not None:
        lo, hi = meta.output.range
        kinds[meta.output.name] = ("image", float(hi - lo))
    return kinds


def compare(
    title: str,
    refs: Sequence[Mapping[str, np.ndarray]],
    gots: Sequence[Mapping[str, np.ndarray]],
    meta: ModelMeta | None,
    tol: Tolerance,
    labels: Mapping[str, Sequence[int]] | None = None,
) -> Comparison:
    """Compare outputs run by run; ``labels`` (output name -> class per sample) adds accuracies."""
    kinds = output_kinds(meta)
    report = Comparison(title, len(refs))
    for name in refs[0]:
        r = [np.asarray(x[name], np.float64) for x in refs]
        g = [np.asarray(x[name], np.float64) for x in gots]
        diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(r, g)])
        finite = np.isfinite(diffs)
        kind, peak = kinds.get(name, ("logits" if r[0].ndim == 2 and r[0].shape[-1] > 1 else "tensor", 0.0))
        o = OutputReport(name, kind, float(diffs.max()) if finite.all() else math.inf,
                         float(diffs.mean()) if finite.all() else math.inf)
        if not finite.all():
            o.failures.append(f"{int((~finite).sum())} non-finite values")
        if kind == "image":
            o.psnr = psnr(np.concatenate([a.ravel() for a in r]), np.concatenate([b.ravel() for b in g]), peak)
        if kind == "logits":
            ra = np.concatenate([a.reshape(-1, a.shape[-1]).argmax(1) for a in r])
            ga = np.concatenate([b.reshape(-1, b.shape[-1]).argmax(1) for b in g])
            o.top1_agree = float(np.mean(ra == ga))
            # Agreement where the reference is confident: low-margin samples flip under any noise.
            rl = np.concatenate([a.reshape(-1, a.shape[-1]) for a in r])
            p = np.exp(rl - rl.max(1, keepdims=True))
            conf = (p / p.sum(1, keepdims=True)).max(1) >= 0.5
            if conf.any():
                o.top1_agree_confident = float(np.mean((ra == ga)[conf]))
                o.confident_samples = int(conf.sum())
            if labels and name in labels:
                y = np.asarray(labels[name])
                o.ref_top1_acc, o.test_top1_acc = float(np.mean(ra == y)), float(np.mean(ga == y))
        if kind == "tensor":
            scale = float(np.mean([np.abs(a).mean() for a in r])) or 1.0
            o.rel_mean = o.mean_abs / scale
            if tol.max_rel_mean is not None and o.rel_mean > tol.max_rel_mean:
                o.failures.append(f"relative mean error > {tol.max_rel_mean:g}")
        if tol.max_abs is not None and o.max_abs > tol.max_abs:
            o.failures.append(f"max_abs > {tol.max_abs:g}")
        if tol.mean_abs is not None and o.mean_abs > tol.mean_abs:
            o.failures.append(f"mean_abs > {tol.mean_abs:g}")
        if tol.min_psnr is not None and o.psnr is not None and o.psnr < tol.min_psnr:
            o.failures.append(f"psnr < {tol.min_psnr:g} dB")
        if tol.min_top1_agree is not None and o.top1_agree is not None and o.top1_agree < tol.min_top1_agree:
            o.failures.append(f"top1_agree < {100 * tol.min_top1_agree:g}%")
        report.outputs.append(o)
    return report


# --- running -----------------------------------------------------------------------------------


def ort_inputs(sess) -> dict[str, tuple[tuple, np.dtype]]:
    from artcam.runtime.backends.onnxrt import _ORT_DTYPES

    return {i.name: (tuple(i.shape), _ORT_DTYPES.get(i.type, np.dtype(np.float32))) for i in sess.get_inputs()}


def run_ort(sess, feeds: Iterable[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    names = [o.name for o in sess.get_outputs()]
    want = {i.name: i.type for i in sess.get_inputs()}
    out = []
    for f in feeds:
        f = {k: (v.astype(np.float16) if want[k] == "tensor(float16)" else v) for k, v in f.items()}
        out.append({n: np.asarray(v, np.float32) for n, v in zip(names, sess.run(names, f))})
    return out


def run_torch(model, feeds: Iterable[Mapping[str, np.ndarray]], output_names: Sequence[str]) -> list[dict[str, np.ndarray]]:
    import torch

    model = model.eval()
    out = []
    with torch.no_grad():
        for f in feeds:
            y = model(*[torch.from_numpy(np.asarray(v)) for v in f.values()])
            y = y if isinstance(y, (tuple, list)) else (y,)
            out.append({n: t.detach().cpu().numpy().astype(np.float32) for n, t in zip(output_names, y)})
    return out
