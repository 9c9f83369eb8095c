"""Classification data: image folders and CIFAR-10, decoded once into uint8 arrays, augmented per step.

Decoding thousands of JPEGs every epoch would dominate a CPU run, so every image is decoded once,
squared (centre crop, the same thing the runtime's ``center_crop`` does) and resized to the cache
size. Augmentation (random resized crop + horizontal flip, no colour jitter: colour is part of a
painting's style) draws its parameters from ``(seed, epoch, position)``, so a resumed run and a
DDP rank see exactly the images an uninterrupted single run would.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import data_root, read_image
from artcam.training.common import TrainingError, list_images

CIFAR_SUBSET = ("cifar10", "cifar10_subset.npz")  # under the data root (``data_root``)


EVAL_CROP = 0.875  # the runtime's ``center_crop`` keeps this fraction of the shorter side


def cache_size(img_size: int) -> int:
    """Side of the cached squares: the evaluation crop of it is exactly ``img_size``."""
    return int(round(img_size / EVAL_CROP))


@dataclass
class ImageSplit:
    images: np.ndarray  # (N, S, S, 3) uint8 RGB
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ClassificationData:
    classes: tuple[str, ...]
    train: ImageSplit
    val: ImageSplit
    source: str
    val_name: str = "val"  # "val" or "test" (CIFAR's test set)
    skipped: list[str] = field(default_factory=list)  # unreadable files, with the reason
    min_crop: float = 0.35  # smallest area fraction of a random resized crop
    eval_crop: float = EVAL_CROP  # central fraction kept for evaluation (the runtime's center_crop)


def square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (area filter when shrinking)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = rgb[top : top + s, left : left + s]
    if s == size:
        return np.ascontiguousarray(sq)
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)


# --- image folders ----------------------------------------------------------------------------


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = {c.name: list_images(c) for c in classes}
    if len(out) < 2:
        raise TrainingError(
            f"{root} has {len(out)} class folder(s); a classifier needs at least 2",
            "put each class's images in its own subfolder: DIR/<class>/*.jpg",
        )
    empty = [c for c, files in out.items() if not files]
    if empty:
        raise TrainingError(f"class folder(s) without images in {root}: {', '.join(empty)}",
                            "add images or remove the empty folder")
    return out


def _decode(files: list[Path], labels: list[int], size: int, skipped: list[str]) -> ImageSplit:
    imgs, labs = [], []
    for f, y in zip(files, labels):
        try:
            bgr = read_image(f)
        except ArtcamError as e:
            skipped.append(f"{f}: {e.message}")
            continue
        imgs.append(square_resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
        labs.append(y)
    arr = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
    return ImageSplit(arr, np.asarray(labs, np.int64))


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): ``fraction`` of each class (at least one) held out, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(val, np.int64))


def load_folder(root: str | Path, size: int, val_split: float, seed: int) -> ClassificationData:
    root = Path(root)
    if not root.is_dir():
        raise TrainingError(f"data folder not found: {root}", "pass --data DIR with one subfolder per class")
    skipped: list[str] = []
    if (root / "train").is_dir() and (root / "val").is_dir():
        tr, va = _class_folders(root / "train"), _class_folders(root / "val")
        if sorted(tr) != sorted(va):
            raise TrainingError(f"train/ and val/ in {root} have different classes",
                                f"train: {sorted(tr)}, val: {sorted(va)}")
        classes = tuple(sorted(tr))
        parts = []
        for split in (tr, va):
            files = [f for c in classes for f in split[c]]
            labels = [i for i, c in enumerate(classes) for _ in split[c]]
            parts.append(_decode(files, labels, cache_size(size), skipped))
        train, val = parts
    else:
        if not 0.0 < val_split < 1.0:
            raise TrainingError(f"--val-split {val_split} must be between 0 and 1",
                                "or provide DIR/train/<class>/ and DIR/val/<class>/")
        folders = _class_folders(root)
        classes = tuple(sorted(folders))
        files = [f for c in classes for f in folders[c]]
        labels = [i for i, c in enumerate(classes) for _ in folders[c]]
        everything = _decode(files, labels, cache_size(size), skipped)
        tr_idx, va_idx = stratified_split(everything.labels, val_split, seed)
        train = ImageSplit(everything.images[tr_idx], everything.labels[tr_idx])
        val = ImageSplit(everything.images[va_idx], everything.labels[va_idx])
    for name, split in (("training", train), ("validation", val)):
        missing = [classes[c] for c in range(len(classes)) if not np.any(split.labels == c)]
        if missing:
            raise TrainingError(f"no readable {name} images for class(es) {', '.join(missing)} in {root}",
                                f"{len(skipped)} file(s) were unreadable; add images")
    return ClassificationData(classes, train, val, source=str(root), skipped=skipped)


# --- CIFAR-10 ---------------------------------------------------------------------------------

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _cifar_batches(folder: Path) -> tuple[ImageSplit, ImageSplit, tuple[str, ...]]:
    """The original python pickle batches: data_batch_1..5, test_batch, batches.meta."""

    def read(p: Path) -> ImageSplit:
        with open(p, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return ImageSplit(np.ascontiguousarray(x), np.asarray(d[b"labels"], np.int64))

    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise TrainingError(f"{folder} holds no CIFAR-10 python batches (data_batch_*, test_batch)",
                            "pass cifar10:PATH to the extracted cifar-10-batches-py folder or an .npz")
    parts = [read(p) for p in train_files]
    train = ImageSplit(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    classes = CIFAR_CLASSES
    meta = folder / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as f:
            classes = tuple(n.decode() for n in pickle.load(f, encoding="bytes")[b"label_names"])
    return train, read(folder / "test_batch"), classes


def _cifar_npz(path: Path) -> tuple[ImageSplit, ImageSplit, tuple[str, ...]]:
    with np.load(path, allow_pickle=False) as d:
        need = {"x_train", "y_train", "x_test", "y_test"}
        if not need <= set(d.files):
            raise TrainingError(f"{path} lacks {sorted(need - set(d.files))}",
                                "an .npz needs x_train (N,32,32,3) uint8, y_train, x_test, y_test")
        classes = tuple(str(c) for c in d["classes"]) if "classes" in d.files else CIFAR_CLASSES
        train = ImageSplit(np.ascontiguousarray(d["x_train"], np.uint8), d["y_train"].astype(np.int64))
        test = ImageSplit(np.ascontiguousarray(d["x_test"], np.uint8), d["y_test"].astype(np.int64))
    return train, test, classes


def load_cifar(path: str | Path | None) -> ClassificationData:
    """CIFAR-10 from an .npz or the python batches folder; the test set serves as validation."""
    p = Path(path) if path else data_root(*CIFAR_SUBSET)
    if not p.exists():
        raise TrainingError(f"CIFAR-10 data not found at {p}",
                            "pass --data cifar10:PATH (.npz or cifar-10-batches-py/), or set ARTCAM_DATA")
    train, test, classes = _cifar_npz(p) if p.is_file() else _cifar_batches(p)
    for name, split in (("train", train), ("test", test)):
        if split.images.ndim != 4 or split.images.shape[1:] != (32, 32, 3) or len(split.images) != len(split.labels):
            raise TrainingError(f"CIFAR-10 {name} images in {p} have shape {split.images.shape}, expected (N,32,32,3)")
    return ClassificationData(classes, train, test, source=f"cifar10:{p}", val_name="test",
                              min_crop=0.6, eval_crop=1.0)


def class_sets_agree(roots: list[Path]) -> None:
    """Every folder must hold the same class folders: a label missing from one would shift the others."""
    sets = {r: {p.name for p in r.iterdir() if p.is_dir() and not p.name.startswith(".")} for r in roots}
    first = roots[0]
    for r in roots[1:]:
        if sets[r] != sets[first]:
            only_a, only_b = sorted(sets[first] - sets[r]), sorted(sets[r] - sets[first])
            raise TrainingError(f"{first} and {r} hold different classes: only in the first {only_a or '-'}, "
                                f"only in the second {only_b or '-'}", "give every folder the same class subfolders")


def load_folders(roots: list[str | Path], size: int, val_split: float, seed: int) -> ClassificationData:
    """Several folders of the same classes as one dataset (e.g. ``art`` + ``art_extra``).

    Each folder is split on its own with the same seed, so adding a folder never moves an image of
    another folder between train and validation: a split stays held out as the data grows.
    """
    roots = [Path(r) for r in roots]
    for r in roots:
        if not r.is_dir():
            raise TrainingError(f"data folder not found: {r}", "pass --data DIR [DIR ...] with one subfolder per class")
    if len(roots) == 1:
        return load_folder(roots[0], size, val_split, seed)
    class_sets_agree(roots)
    parts = [load_folder(r, size, val_split, seed) for r in roots]
    classes = parts[0].classes

    def join(which: str) -> ImageSplit:
        splits = [getattr(p, which) for p in parts]
        return ImageSplit(np.concatenate([s.images for s in splits]), np.concatenate([s.labels for s in splits]))

    return ClassificationData(classes, join("train"), join("val"), source=",".join(str(r) for r in roots),
                              skipped=[s for p in parts for s in p.skipped])


def load_data(spec: str, size: int, val_split: float, seed: int) -> ClassificationData:
    """``--data``: ``cifar10``, ``cifar10:PATH``, an image folder, or several joined by commas."""
    if spec == "cifar10" or spec.startswith("cifar10:"):
        return load_cifar(spec.partition(":")[2] or None)
    return load_folders(spec.split(","), size, val_split, seed)


def fingerprint(data: ClassificationData) -> str:
    """A short hash of the class list and split sizes, stored in checkpoints to catch a changed --data."""
    key = repr((data.classes, len(data.train), len(data.val), data.train.images.shape[1:]))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --- augmentation -----------------------------------------------------------------------------


def random_resized_crop(img: np.ndarray, out: int, rng: np.random.Generator, min_area: float,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(min_area, 1.0)
        r = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw, ch = int(round(np.sqrt(area * r))), int(round(np.sqrt(area / r)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            break
    else:
        ch, cw, top, left = h, w, 0, 0
    crop = img[top : top + ch, left : left + cw]
    interp = cv2.INTER_AREA if ch > out and cw > out else cv2.INTER_LINEAR
    return cv2.resize(crop, (out, out), interpolation=interp)


def train_view(img: np.ndarray, out: int, seed: tuple[int, ...], min_area: float) -> np.ndarray:
    """One augmented view, fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    x = random_resized_crop(img, out, rng, min_area)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    return np.ascontiguousarray(x)


def eval_view(img: np.ndarray, out: int, crop: float) -> np.ndarray:
    """The central ``crop`` fraction, resized to ``out`` (what the runtime feeds the exported model)."""
    s = img.shape[0]
    c = min(s, int(round(s * crop)))
    if c != s:
        o = (s - c) // 2
        img = img[o : o + c, o : o + c]
    if c == out:
        return np.ascontiguousarray(img)
    return cv2.resize(img, (out, out), interpolation=cv2.INTER_AREA if img.shape[0] > out else cv2.INTER_LINEAR)


def to_tensor_batch(views: list[np.ndarray]):
    """uint8 HWC RGB views -> float32 NCHW in [0, 1]."""
    import torch

    x = torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2)
    return x.float().div_(255.0)
