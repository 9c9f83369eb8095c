"""DCGAN-family generator and discriminator for small painting sets (64 or 128 px).

G: z (+ one-hot class, embedded and concatenated, ArtGAN-style) -> 4x4 -> stride-2 transposed
convolutions with BatchNorm/ReLU -> tanh RGB in [-1, 1]. Transposed 4x4/stride-2 convolutions cost
4 multiply-adds per output pixel and channel pair (an upsample + 3x3 conv costs 9), which keeps the
128-px latent walk real-time on a CPU.
D: stride-2 4x4 convolutions with spectral normalisation and LeakyReLU, global sum pooling, a linear
score, plus a projection term <embed(y), phi(x)> when conditional (Miyato & Koyama 2018).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils import spectral_norm

SIZES = (64, 128)


@dataclass
class GanConfig:
    """Everything needed to rebuild both nets (stored in checkpoints as a dict)."""

    size: int = 64
    latent: int = 128
    g_base: int = 64  # channels at the last (full-resolution) hidden layer of G
    d_base: int = 64  # channels at the first layer of D
    classes: tuple[str, ...] = field(default_factory=tuple)  # non-empty -> class-conditional
    embed: int = 64  # class embedding size in G

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size {self.size} is not one of {SIZES}")
        self.classes = tuple(self.classes)

    @property
    def conditional(self) -> bool:
        return len(self.classes) > 0

    @property
    def arch(self) -> str:
        return f"dcgan{self.size}-g{self.g_base}-d{self.d_base}" + ("-cond" if self.conditional else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GanConfig":
        return cls(**{**d, "classes": tuple(d.get("classes", ()))})


def _levels(size: int) -> int:
    """Number of stride-2 stages between 4x4 and ``size``."""
    return {64: 4, 128: 5}[size]


def _width(base: int, stage_from_full: int, cap: int = 8) -> int:
    return base * min(2**stage_from_full, cap)


class GeneratorNet(nn.Module):
    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        n = _levels(cfg.size)
        widths = [_width(cfg.g_base, n - 1 - i) for i in range(n)]  # e.g. 512, 256, 128, 64 at 64 px
        self.embed = nn.Linear(len(cfg.classes), cfg.embed, bias=False) if cfg.conditional else None
        zin = cfg.latent + (cfg.embed if cfg.conditional else 0)
        self.stem = nn.Sequential(
            nn.ConvTranspose2d(zin, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)
        )
        ups = []
        for i in range(n - 1):
            ups += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(widths[i + 1]), nn.ReLU(True)]
        ups += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*ups)
        self.apply(_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional generator needs a class vector")
            z = torch.cat([z, self.embed(y.to(z.dtype))], dim=1)
        return self.body(self.stem(z[:, :, None, None]))


class Discriminator(nn.Module):
    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        n = _levels(cfg.size)
        widths = [_width(cfg.d_base, i) for i in range(n)]  # 64, 128, 256, 512 at 64 px
        layers, cin = [], 3
        for w in widths:
            layers += [spectral_norm(nn.Conv2d(cin, w, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            cin = w
        # one more stride-1 conv at 4x4 so the pooled features see the whole image
        layers += [spectral_norm(nn.Conv2d(cin, cin, 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(cin, 1))
        self.project = spectral_norm(nn.Linear(len(cfg.classes), cin, bias=False)) if cfg.conditional else None
        self.apply(_init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        phi = self.features(x).sum(dim=(2, 3))
        out = self.score(phi).squeeze(1)
        if self.project is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs a class vector")
            out = out + (self.project(y.to(phi.dtype)) * phi).sum(1)
        return out


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        w = getattr(m, "weight_orig", m.weight)
        nn.init.normal_(w, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build(cfg: GanConfig) -> tuple[GeneratorNet, Discriminator]:
    return GeneratorNet(cfg), Discriminator(cfg)


@torch.no_grad()
def ema_update(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """Exponential moving average of G's weights; BatchNorm buffers are copied as they are."""
    for pe, pl in zip(ema.parameters(), live.parameters()):
        pe.lerp_(pl.detach(), 1.0 - decay)
    for be, bl in zip(ema.buffers(), live.buffers()):
        be.copy_(bl)


@torch.no_grad()
def recalibrate_bn(g: GeneratorNet, batches: int = 16, batch_size: int = 64, seed: int = 0) -> GeneratorNet:
    """Re-estimate BatchNorm statistics for these (EMA) weights: the live G's running stats
    belong to other weights, and eval-mode samples drift without this. Returns ``g`` in eval mode."""
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    dev = next(g.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    g.train()
    ncls = len(g.cfg.classes)
    for _ in range(batches):
        z = torch.randn(batch_size, g.cfg.latent, generator=gen).to(dev)
        y = None
        if ncls:
            y = nn.functional.one_hot(torch.randint(ncls, (batch_size,), generator=gen), ncls).float().to(dev)
        g(z, y)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return g.eval()


def copy_for_ema(g: GeneratorNet) -> GeneratorNet:
    ema = copy.deepcopy(g)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
