"""The classifier networks: an EfficientNet-Lite backbone with its ImageNet "objects" layer and a new head.

Style is texture, so besides the pooled features ("pooled") a head can read per-channel mean and
standard deviation of mid-level blocks ("stats") and, in addition, signed-square-root Gram matrices
of blocks at the ends of stages 2, 4 and 5 ("gram", bilinear pooling: what Gram-matrix style losses
compare). BatchNorm layers of the backbone always keep their ImageNet running statistics (``train_mode``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from artcam.training.common import TrainingError
from artcam.training.efficientnet_lite import (
    LITE_ARCHS,
    NUM_FEATURES,
    efficientnet_lite,
    efficientnet_lite0,
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
    """The pretrained ImageNet classifier alone (an objects-only classifier)."""

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
