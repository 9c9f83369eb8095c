"""The classifier's step-by-step tools: cached features, head fits, export, end-to-end scoring, the held-out split.

The shipped ``runtime/models/classifier_lite0.onnx`` is rebuilt in one run by its recipe
(``artcam train classify --recipe classifier_lite0``: a linear style head fitted on the frozen backbone's
features, ``linear_head``). These subcommands split that run into steps that can be cached and compared:
features once per image (``features``), one or more heads fitted on them (``fit``), the two-head network
written out (``export``), scored end to end through the runtime (``evaluate``). ``features --backbone CKPT``
uses a fine-tuned backbone instead; its L2 choice is then optimistic, since that backbone has already seen
the inner split's images.

    python -m artcam.training.make_classifier features --out runs/style/features.npz
    python -m artcam.training.make_classifier fit runs/style/features.npz --head gram --out runs/style/style_head.pt
    python -m artcam.training.make_classifier export --checkpoint runs/style/style_head.pt --out runs/style/c.onnx
    python -m artcam.training.make_classifier evaluate --model runs/style/c.onnx [--png confusion.png]
    python -m artcam.training.make_classifier heldout --out runs/style/heldout

``--data`` (features, evaluate, heldout) takes one or more folders of WikiArt style folders, each split on its
own: default ``art`` and ``art_extra`` under ``$ARTCAM_DATA``, else ``../shared/data``. ``features --arch
efficientnet_lite1|efficientnet_lite2`` computes the features on a larger backbone (its native input size).
``export --out`` has no default: replacing the shipped model takes ``--out runtime/models/classifier_lite0.onnx``.

``export`` without a checkpoint writes the objects-only ImageNet classifier. ``export`` also takes any
``artcam train classify`` checkpoint of efficientnet_lite0 (e.g. a GPU fine-tune).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import data_root
from artcam.training.efficientnet_lite import LITE_ARCHS, variant
from artcam.training.linear_head import FEATURE_SEED, compute_features, fit_head, head_checkpoint


def _verify_images(size: int = 224) -> list[np.ndarray]:
    """Parity inputs: two natural images plus noise, at the model's fixed input size."""
    import cv2
    from skimage import data

    feeds = []
    for img in (data.chelsea(), data.coffee()):
        x = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        feeds.append(x.transpose(2, 0, 1)[None])
    feeds.append(np.random.default_rng(0).random((2, 3, size, size), dtype=np.float32))
    return feeds


def cmd_features(args: argparse.Namespace) -> None:
    from artcam.training import datasets as D

    size = variant(args.arch).input_size
    data = D.load_folders(args.data, size, args.val_split, FEATURE_SEED)
    print(f"{len(data.train)} train / {len(data.val)} val images, {len(data.skipped)} skipped")
    arrays = {"classes": np.array(data.classes), "train_y": data.train.labels, "val_y": data.val.labels}
    for name, split, flip in (("val", data.val, False), ("train", data.train, False), ("trainflip", data.train, True)):
        print(f"{name}:")
        for k, v in compute_features(split.images, data.eval_crop, flip, backbone=args.backbone, arch=args.arch).items():
            arrays[f"{name}_{k}"] = v
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays, source=np.array(",".join(args.data)), backbone=np.array(args.backbone or ""),
             arch=np.array(args.arch))
    print(f"wrote {args.out}")


def cmd_fit(args: argparse.Namespace) -> None:
    from artcam.training.common import save_checkpoint

    with np.load(args.features) as z:
        f = {k: z[k] for k in z.files}
    classes = tuple(str(c) for c in f["classes"])
    results = {}
    for head in args.head:
        results[head] = fit_head(f, head, tuple(args.l2), args.iters)
    summary = {h: {k: r[k] for k in ("l2", "views", "inner_scores", "val_acc", "confusion")} for h, r in results.items()}
    print(json.dumps({h: s["val_acc"] for h, s in summary.items()}))
    win = max(results, key=lambda h: results[h]["val_acc"]) if args.keep_best else args.head[-1]
    arch = str(f["arch"]) if "arch" in f else "efficientnet_lite0"
    save_checkpoint(args.out, head_checkpoint(results[win], classes, str(f.get("source", "")), str(f.get("backbone", "")),
                                              arch))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"kept": win, "results": summary}, indent=1))
    print(f"kept {win} head -> {args.out}")


# --- export -----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> None:
    from artcam.export.onnx_export import export_model
    from artcam.training.classify import export_spec, objects_only_spec
    from artcam.training.common import TrainingError, load_checkpoint

    size = 224
    if args.checkpoint:
        ck = load_checkpoint(args.checkpoint, "classify")
        if ck.get("arch") not in LITE_ARCHS:
            raise TrainingError(f"{args.checkpoint} holds a {ck.get('arch')} classifier, not an EfficientNet-Lite one",
                                "export it with `artcam export`")
        spec, size = export_spec(ck), int(ck["config"]["img_size"])
    else:
        spec = objects_only_spec()
    feeds = [{"image": x} for x in _verify_images(size)]
    report = export_model(spec["model"], spec["example_inputs"], spec["output_names"], spec["meta"], args.out,
                          dynamic_axes=spec["dynamic_axes"], verify_inputs=feeds, atol=1e-4)
    print(f"wrote {args.out}")
    print("\n".join(report.lines()))


def val_files(roots: str | Path | list, val_split: float = 0.15, seed: int = FEATURE_SEED
              ) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """The held-out files of ``artcam train classify --val-split 0.15 --seed 0`` (same listing, same split,
    each folder split on its own; the trainer splits what it could decode, so an unreadable file in a
    folder shifts that folder's split)."""
    from artcam.training.common import list_images
    from artcam.training.datasets import class_sets_agree, stratified_split

    roots = [Path(r) for r in ([roots] if isinstance(roots, (str, Path)) else roots)]
    class_sets_agree(roots)
    out_files: list[Path] = []
    out_labels: list[np.ndarray] = []
    classes: tuple[str, ...] = ()
    for root in roots:
        classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
        files = [f for c in classes for f in list_images(root / c)]
        labels = np.asarray([i for i, c in enumerate(classes) for _ in list_images(root / c)], np.int64)
        _, va = stratified_split(labels, val_split, seed)
        out_files += [files[i] for i in va]
        out_labels.append(labels[va])
    return out_files, np.concatenate(out_labels), classes


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Score the exported file end to end: original files, the runtime's own preprocessing, ONNX Runtime."""
    from artcam.runtime.fileio import read_image
    from artcam.runtime.loading import load_model
    from artcam.runtime.processing import ImagePreprocessor
    from artcam.training.classify import save_confusion_png

    files, labels, classes = val_files(args.data)
    m = load_model(args.model, task="classify", device="cpu")
    head = next(h for h in m.meta.heads if h.name == args.head)
    if tuple(head.labels) != classes:
        raise SystemExit(f"head {args.head} labels {head.labels} differ from the folder's classes {classes}")
    pre = ImagePreprocessor(m.meta.image)
    conf = np.zeros((len(classes), len(classes)), np.int64)
    for f, y in zip(files, labels):
        out = m.runner.infer({m.meta.image.name: pre(read_image(f))})
        conf[y, int(np.argmax(out[args.head]))] += 1
    m.close()
    acc = float(np.trace(conf) / conf.sum())
    per_class = {c: float(conf[i, i] / max(conf[i].sum(), 1)) for i, c in enumerate(classes)}
    result = {"model": str(args.model), "images": int(conf.sum()), "top1": acc, "per_class": per_class,
              "classes": list(classes), "confusion": conf.tolist()}
    print(json.dumps(result, indent=1))
    if args.json:
        from artcam.runtime.fileio import atomic_write_text

        argv = ["python", "-m", "artcam.training.make_classifier", *args.argv]
        atomic_write_text(args.json, json.dumps({"argv": argv, **result}, indent=1) + "\n")
    if args.png:
        save_confusion_png(Path(args.png), conf.tolist(), classes,
                           f"{Path(str(args.model)).stem} {args.head}: val top-1 {acc:.3f} ({conf.sum()} images)")


def cmd_heldout(args: argparse.Namespace) -> None:
    """Link the held-out paintings into DIR/<class>/, so tools that take a folder (``artcam export --int8
    --data``) score exactly the split the head never saw."""
    import os

    files, labels, classes = val_files(args.data)
    out = Path(args.out)
    for f, y in zip(files, labels):
        (out / classes[y]).mkdir(parents=True, exist_ok=True)
        link = out / classes[y] / f.name
        if not link.exists():
            os.symlink(f.resolve(), link)
    print(f"linked {len(files)} held-out images into {out}/<class>/")


DATA_HELP = ("folder(s) of WikiArt style folders, split each on its own (default: art and art_extra under "
             "$ARTCAM_DATA, else ../shared/data)")


def default_art_folders() -> list[str]:
    """``art`` plus ``art_extra`` when it is there (2,000 paintings per style instead of 600)."""
    root = data_root()
    return [str(root / n) for n in ("art", "art_extra") if n == "art" or (root / n).is_dir()]


def main(argv: list[str] | None = None) -> int:
    ap = ArgParser(prog="python -m artcam.training.make_classifier", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("features", help="cache frozen backbone features of an image folder")
    p.add_argument("--data", nargs="+", default=None, help=DATA_HELP)
    p.add_argument("--val-split", type=float, default=0.15)
    p.add_argument("--backbone", help="classify checkpoint whose (fine-tuned) backbone computes the features")
    p.add_argument("--arch", default="efficientnet_lite0", choices=LITE_ARCHS,
                   help="backbone family member (its native input size: 224/240/260 px)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("fit", help="fit style heads on cached features; keep one as a checkpoint")
    p.add_argument("features")
    p.add_argument("--head", nargs="+", default=["pooled", "stats", "gram"])
    p.add_argument("--l2", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                   help="L2 strengths to choose from on the inner split (one value: no search)")
    p.add_argument("--iters", type=int, default=150, help="L-BFGS iterations per fit")
    p.add_argument("--keep-best", action="store_true", help="keep the head with the best val accuracy "
                   "(default: the last --head)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("export", help="write the two-head (or objects-only) ONNX model")
    p.add_argument("--checkpoint", help="classify checkpoint with a style head on an EfficientNet-Lite")
    p.add_argument("--out", required=True, help="the ONNX model (runtime/models/classifier_lite0.onnx replaces the "
                                                "shipped one)")
    p = sub.add_parser("evaluate", help="top-1 of an exported model on the held-out split, via the runtime")
    p.add_argument("--data", nargs="+", default=None, help=DATA_HELP)
    p.add_argument("--model", default="classifier_lite0")
    p.add_argument("--head", default="style")
    p.add_argument("--png", help="write the confusion matrix here")
    p.add_argument("--json", help="also write the result here, with the command line (for the README's numbers)")
    p = sub.add_parser("heldout", help="link the held-out split into DIR/<class>/ (for export --int8 --data)")
    p.add_argument("--data", nargs="+", default=None, help=DATA_HELP)
    p.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if "data" in args and args.data is None:
        args.data = default_art_folders()
    {"heldout": cmd_heldout, "features": cmd_features, "fit": cmd_fit, "export": cmd_export, "evaluate": cmd_evaluate}[args.cmd](args)
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
