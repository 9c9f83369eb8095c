"""Build the shipped classifier ``runtime/models/classifier_lite0.onnx`` (or a Lite1/Lite2 one).

One EfficientNet-Lite backbone, two heads: "objects" (the 1000 ImageNet classes, the original
pretrained layer) and "style" (the 7 WikiArt styles). The shipped style head sits on the *frozen*
backbone (full fine-tunes on a GPU did not beat it; README): features are computed once per image
(``features``), a linear head is fitted on them (``fit``: standardise, multinomial logistic
regression, L2 strength chosen on a split of the training images only), and the two-head network
is exported (``export``). With a frozen backbone the objects head is exactly the pretrained one.
``features --backbone CKPT`` uses a fine-tuned backbone instead; its L2 choice is then optimistic,
since that backbone has already seen the inner split's images.

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
import time
from pathlib import Path

import numpy as np
import torch

from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import data_root
from artcam.training.efficientnet_lite import LITE_ARCHS, variant

FEATURE_SEED = 0  # the stratified val split of `artcam train classify --seed 0 --val-split 0.15`


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


# --- features ---------------------------------------------------------------------------------


def load_backbone(model, checkpoint: str | Path | None) -> dict:
    """Put a fine-tuned backbone from a classify checkpoint into ``model`` (a LiteClassifier); -> its provenance."""
    from artcam.training.common import TrainingError, load_checkpoint

    if not checkpoint:
        return {}
    ck = load_checkpoint(checkpoint, "classify", model.arch)
    state = {k[len("backbone."):]: v for k, v in ck["model"].items() if k.startswith("backbone.")}
    try:
        model.backbone.load_state_dict(state)
    except RuntimeError as e:
        raise TrainingError(f"{checkpoint} holds no {model.arch} backbone ({e})") from e
    return {"checkpoint": str(checkpoint), "val_top1": ck.get("best", {}).get("val_acc"),
            "provenance": ck.get("provenance", {})}


@torch.no_grad()
def compute_features(images: np.ndarray, crop: float, flip: bool, batch: int = 32, log=print,
                     backbone: str | Path | None = None, arch: str = "efficientnet_lite0",
                     size: int | None = None) -> dict[str, np.ndarray]:
    """Pooled, channel-statistics and Gram features of each image's evaluation view (default: the backbone's
    own input size)."""
    from artcam.training import datasets as D
    from artcam.training.classify import LiteClassifier, channel_stats, gram_features, style_taps

    model = LiteClassifier(2, head="gram", arch=arch)
    load_backbone(model, backbone)
    net = model.backbone.eval()
    size = size or net.variant.input_size
    stat_taps, gram_taps = style_taps(arch)
    out: dict[str, list[np.ndarray]] = {"pooled": [], "stats": [], "gram": []}
    t0 = time.perf_counter()
    for s in range(0, len(images), batch):
        views = [D.eval_view(im, size, crop) for im in images[s : s + batch]]
        if flip:
            views = [np.ascontiguousarray(v[:, ::-1]) for v in views]
        taps = net.features_at(D.to_tensor_batch(views), set(stat_taps) | set(gram_taps) | {"head"})
        out["pooled"].append(taps["head"].mean((2, 3)).numpy())
        out["stats"].append(torch.cat([c for t in stat_taps for c in channel_stats(taps[t])], 1).numpy())
        out["gram"].append(torch.cat([gram_features(taps[t]) for t in gram_taps], 1).half().numpy())
        if s % (batch * 10) == 0:
            log(f"  {s + len(views)}/{len(images)} images, {time.perf_counter() - t0:.0f} s")
    return {k: np.concatenate(v) for k, v in out.items()}


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


# --- fitting ----------------------------------------------------------------------------------


def head_inputs(f: dict[str, np.ndarray], prefix: str, head: str) -> np.ndarray:
    from artcam.training.classify import head_parts

    parts = [f[f"{prefix}_pooled"].astype(np.float32)]
    kinds = [k for k, _ in head_parts(head)]
    for k in ("stats", "gram"):
        if k in kinds:
            parts.append(f[f"{prefix}_{k}"].astype(np.float32))
    return np.concatenate(parts, 1)


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float, iters: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on standardised features, full-batch L-BFGS."""
    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().T.copy(), b.detach().numpy().copy()


def _standardise(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return (x - mean) / np.sqrt(var + 1e-5)  # BatchNorm1d's formula (eps 1e-5)


def fit_head(f: dict[str, np.ndarray], head: str, l2_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), iters: int = 150,
             log=print) -> dict:
    """Choose L2 on a stratified 15% of the training images, refit on all training images, score val."""
    from artcam.training.datasets import stratified_split

    ytr, yval = f["train_y"].astype(np.int64), f["val_y"].astype(np.int64)
    n_cls = len(f["classes"])
    xa = head_inputs(f, "train", head)
    xb = head_inputs(f, "trainflip", head) if "trainflip_pooled" in f else None  # flipped views, if cached
    xval = head_inputs(f, "val", head)
    inner_tr, inner_va = stratified_split(ytr, 0.15, seed=1)  # split images; both views stay together

    def run(idx_fit: np.ndarray, l2: float):
        x = xa[idx_fit] if xb is None else np.concatenate([xa[idx_fit], xb[idx_fit]])
        y = ytr[idx_fit] if xb is None else np.concatenate([ytr[idx_fit], ytr[idx_fit]])
        mean, var = x.mean(0), x.var(0)
        w, b = fit_logistic(_standardise(x, mean, var).astype(np.float32), y, n_cls, l2, iters)
        return mean, var, w, b

    def acc(model, x, y):
        mean, var, w, b = model
        return float(((_standardise(x, mean, var) @ w.T + b).argmax(1) == y).mean())

    scores = {}
    for l2 in (l2_grid if len(l2_grid) > 1 else ()):
        t0 = time.perf_counter()
        scores[l2] = acc(run(inner_tr, l2), xa[inner_va], ytr[inner_va])
        log(f"  {head}: l2={l2:g} inner-val top-1 {scores[l2]:.4f} ({time.perf_counter() - t0:.0f} s)")
    best_l2 = max(scores, key=lambda k: (scores[k], k)) if scores else l2_grid[0]
    model = run(np.arange(len(ytr)), best_l2)
    mean, var, w, b = model
    pred = (_standardise(xval, mean, var) @ w.T + b).argmax(1)
    conf = np.zeros((n_cls, n_cls), np.int64)
    np.add.at(conf, (yval, pred), 1)
    val_acc = float((pred == yval).mean())
    views = 1 if xb is None else 2
    log(f"  {head}: l2={best_l2:g} refit on {len(ytr)} images x {views} view(s) -> val top-1 {val_acc:.4f}")
    return {"head": head, "l2": best_l2, "views": views, "n_train": len(ytr), "n_val": len(yval),
            "inner_scores": {str(k): v for k, v in scores.items()}, "val_acc": val_acc,
            "confusion": conf.tolist(), "mean": mean, "var": var, "weight": w, "bias": b}


def head_checkpoint(fit: dict, classes: tuple[str, ...], source: str, backbone: str = "",
                    arch: str = "efficientnet_lite0") -> dict:
    """A classify checkpoint (the trainer's format) holding the backbone (ImageNet or fine-tuned) and the fitted head."""
    from artcam.training.classify import LiteClassifier
    from artcam.training.common import provenance

    v = variant(arch)
    model = LiteClassifier(len(classes), head=fit["head"], pretrained=True, arch=arch).eval()
    tuned = load_backbone(model, backbone)
    if fit["head"] != "pooled":
        model.norm.running_mean.copy_(torch.from_numpy(fit["mean"]))
        model.norm.running_var.copy_(torch.from_numpy(fit["var"]))
        model.fc.weight.data.copy_(torch.from_numpy(fit["weight"]))
        model.fc.bias.data.copy_(torch.from_numpy(fit["bias"]))
    else:  # no norm layer: fold the standardisation into the linear layer
        scale = 1.0 / np.sqrt(fit["var"] + 1e-5)
        model.fc.weight.data.copy_(torch.from_numpy((fit["weight"] * scale).astype(np.float32)))
        model.fc.bias.data.copy_(torch.from_numpy((fit["bias"] - (fit["weight"] * scale) @ fit["mean"]).astype(np.float32)))
    config = {"arch": arch, "classes": list(classes), "img_size": v.input_size, "head": fit["head"],
              "head_name": "style", "dropout": v.dropout, "eval_crop": 0.875, "name": f"classifier_{v.name}",
              "freeze_backbone": True, "train_blocks": -1}
    views = "eval view + horizontal flip" if fit["views"] == 2 else "eval view"
    how = "chosen on a stratified 15% of the training images" if fit["inner_scores"] else "given"
    base = "fine-tuned (see backbone_from)" if tuned else "frozen"
    prov = provenance([], source, method=f"{base} EfficientNet-{v.name.capitalize()} features ({views}, "
                      f"{v.input_size} px, centre crop 0.875), "
                      f"{fit['head']} head: standardised, multinomial logistic regression (L-BFGS, L2={fit['l2']:g} "
                      f"{how})",
                      train_images=int(fit["n_train"]), val_images=int(fit["n_val"]), val_split=0.15, seed=FEATURE_SEED,
                      val_top1=round(fit["val_acc"], 4),
                      objects_head=f"ImageNet-1k EfficientNet-{v.name.capitalize()} ({v.package}), "
                      + ("its layer on the fine-tuned backbone (distilled)" if tuned else "unchanged"))
    if tuned:
        prov["backbone_from"] = tuned
    l2 = "" if fit["inner_scores"] else f" --l2 {fit['l2']:g}"
    bb = f" --backbone {backbone}" if backbone else ""
    bb += f" --arch {arch}" if arch != "efficientnet_lite0" else ""
    prov["command"] = (f"python -m artcam.training.make_classifier features --data {source.replace(',', ' ')}{bb} --out FEATURES.npz && "
                       f"python -m artcam.training.make_classifier fit FEATURES.npz --head {fit['head']}{l2} --out CKPT")
    best = {"val_acc": fit["val_acc"], "split": "val", "confusion": fit["confusion"], "epoch": 0}
    return {"kind": "classify", "arch": arch, "config": config, "model": model.state_dict(),
            "step": 0, "epoch": 0, "best": best, "history": [], "provenance": prov}


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
    ap = ArgParser(prog="python -m artcam.training.make_classifier", description=__doc__.split("\n")[1])
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
