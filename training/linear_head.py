"""A linear style head fitted in closed form on a frozen backbone's features (the lbfgs solver of classify).

Features are computed once per image (``compute_features``: pooled, channel statistics and Gram
matrices of the evaluation view, optionally of its mirror image too); ``fit_head`` standardises them and
fits a multinomial logistic regression with L-BFGS, the L2 strength chosen on a split of the training
images only; ``head_checkpoint`` puts the head beside the backbone in a classify checkpoint. With a frozen
backbone the objects head is exactly the pretrained one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from artcam.training.efficientnet_lite import variant

FEATURE_SEED = 0  # the stratified val split of `artcam train classify --seed 0 --val-split 0.15`


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
    from artcam.training.classifier_nets import LiteClassifier, channel_stats, gram_features, style_taps

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


# --- fitting ----------------------------------------------------------------------------------


def head_inputs(f: dict[str, np.ndarray], prefix: str, head: str) -> np.ndarray:
    from artcam.training.classifier_nets import head_parts

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
    from artcam.training.classifier_nets import LiteClassifier
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
