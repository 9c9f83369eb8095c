"""Feed-forward multi-style stylizers: one class, sizes registered as configs (timm style).

Design, each choice for a reason:
- Conditional instance normalisation (Dumoulin et al. 2017): every conv is followed by instance norm
  and a per-style scale and shift, ``gamma = style @ G``, ``beta = style @ B``. Normalising each image
  by its own statistics is what makes fast stylization work (Ulyanov et al. 2016); the style vector
  picks one style's affine, or blends several.
- Encoder (strided convs) -> residual blocks at the lowest resolution -> decoder (upsample x2 then a
  conv: no transposed convs, so no checkerboard). ``skip`` adds the encoder map of the same size after
  each upsampling (U-Net), so the cheap real-time net keeps the photo's edges at 1/2 and full resolution.
- ``teacher`` is Johnson-sized (9x9 ends, full 3x3 residual blocks) and slow; ``nano`` runs its
  residual blocks at 1/8 in depthwise form, decodes to 1/2 and pixel-shuffles to full size: the
  real-time student, distilled from the teacher (``training/recipes``); ``hd`` is a thinner ``nano``
  for 720p and up, distilled from ``nano``.
- Fully convolutional: any H and W that are multiples of ``stride`` work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class StylizerConfig:
    """Everything needed to rebuild a stylizer (stored in checkpoints).

    ``prod(down strides) == 2 ** len(up)`` so the output has the input's size.
    """

    size: str = "nano"
    num_styles: int = 1
    down: tuple[tuple[int, int, int], ...] = ((8, 3, 1), (32, 3, 2), (64, 3, 2))  # (channels, kernel, stride)
    blocks: int = 5  # residual blocks at the lowest resolution
    block: str = "dw"  # dw: inverted residual (1x1, depthwise 3x3, 1x1); dw_light: normalised once | full: Johnson
    expand: int = 2  # width multiplier inside dw blocks
    up: tuple[tuple[int, int], ...] = ((32, 3), (8, 3))  # (channels, kernel): 1x1 conv, upsample x2, kxk conv
    up_depthwise: bool = True  # the kxk conv after each upsampling is depthwise (cheap) or full
    skip: bool = True  # add the encoder map of the same resolution and width after each upsampling
    out_kernel: int = 3
    pad: str = "reflect"  # reflect: no image-border cue, so no painted frames
    norm_from: int = 1  # layers at 1/norm_from resolution or lower are normalised; finer ones are plain
    shuffle: int = 1  # >1: the output conv runs at 1/shuffle resolution and pixel-shuffles up to full size

    @property
    def stride(self) -> int:
        """H and W must be multiples of this."""
        s = 1
        for _, _, st in self.down:
            s *= st
        return s

    @property
    def decoder_stride(self) -> int:
        """What the decoder and the output restore: must equal ``stride``."""
        return 2 ** len(self.up) * self.shuffle

    @property
    def min_size(self) -> int:
        return self.stride * 2

    def to_dict(self) -> dict:
        """Plain lists inside (what TOML and JSON give back), so dicts from any source compare equal."""
        return {k: _lists(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "StylizerConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown stylizer config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: _tuples(v) for k, v in d.items()})


def _lists(v):
    if isinstance(v, (tuple, list)):
        return [_lists(x) for x in v]
    return v


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


_REGISTRY: dict[str, Callable[..., StylizerConfig]] = {}


def register(fn: Callable[..., StylizerConfig]) -> Callable[..., StylizerConfig]:
    _REGISTRY[fn.__name__] = fn
    return fn


def available_sizes() -> list[str]:
    return list(_REGISTRY)


@register
def nano(**kw) -> StylizerConfig:
    """CPU real time: a U-Net whose depthwise blocks run at 1/8 (64 channels), normalised from 1/4 down.
    The decoder ends at 1/2 resolution in full 3x3 convs (32 channels, plain and fused) and a 3x3 conv
    to 12 channels that pixel-shuffles to the full-size picture: each 2x2 block gets its own pixels from
    channel-mixing work done at a quarter of the pixel count (a full-resolution stage with the same
    budget could only afford 8 depthwise channels, and painted like a 4x blurred teacher)."""
    return StylizerConfig(**{**dict(size="nano", down=((32, 3, 2), (32, 3, 2), (64, 3, 2)), blocks=5,
                                    block="dw_light", expand=2, up=((32, 3), (32, 3)), up_depthwise=False,
                                    skip=True, out_kernel=3, pad="zeros", norm_from=4, shuffle=2), **kw})


@register
def hd(**kw) -> StylizerConfig:
    """``nano`` for 1280x720 and up: the same 1/8 and 1/4 core with three of its five blocks, a 16-channel
    1/2-resolution stage and a 1x1 output conv before the pixel shuffle. On ONNX Runtime CPU the 1/2- and
    full-resolution passes are most of ``nano``'s time at 720p (its 32-channel 3x3 decoder conv and 3x3
    output conv alone are a third); this keeps the 2x2 pixel shuffle, so its strokes stay at the full
    picture's pixel scale. Distilled from ``nano``'s pictures (training/recipes/stylizer_hd.toml)."""
    return nano(**{**dict(size="hd", down=((16, 3, 2), (32, 3, 2), (64, 3, 2)), blocks=3, up=((32, 3), (16, 3)),
                          out_kernel=1), **kw})


@register
def teacher(**kw) -> StylizerConfig:
    """Johnson et al.'s layout at half width (9x9 ends, full residual blocks at 1/4): the quality ceiling
    that a CPU can train in an hour; too slow for real time (about 1.5x the peer's multistyle26)."""
    return StylizerConfig(**{**dict(size="teacher", down=((16, 9, 1), (32, 3, 2), (64, 3, 2)), blocks=5,
                                    block="full", expand=1, up=((32, 3), (16, 3)), up_depthwise=False, skip=False,
                                    out_kernel=9), **kw})


def config_for(size: str, num_styles: int, **kw) -> StylizerConfig:
    if size not in _REGISTRY:
        raise ValueError(f"unknown stylizer size {size!r}; choose from {', '.join(_REGISTRY)}")
    cfg = _REGISTRY[size](num_styles=num_styles, **kw)
    if cfg.stride != cfg.decoder_stride:
        raise ValueError(f"down strides multiply to {cfg.stride}, not 2**len(up) * shuffle = {cfg.decoder_stride}")
    if cfg.block not in ("dw", "dw_light", "full"):
        raise ValueError(f"unknown block {cfg.block!r}; choose dw, dw_light or full")
    return cfg


class CondInstanceNorm(nn.Module):
    """Instance norm without its own affine, then a per-style scale and shift mixed by the style vector."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        g = (style @ self.gamma)[:, :, None, None]
        b = (style @ self.beta)[:, :, None, None]
        return F.instance_norm(x, eps=1e-5) * g + b


class ConvNormAct(nn.Module):
    """Conv, conditional instance norm, ReLU; with ``norm=False`` a plain conv with bias and zero padding.

    The plain form is for the real-time net's finest maps: there, instance norm, the style affine and
    reflect padding are separate memory-bound passes (on ONNX Runtime CPU they cost more than the
    convs), while a conv + bias + ReLU runs as one fused kernel.
    """

    def __init__(self, cin: int, cout: int, k: int, num_styles: int, stride: int = 1, groups: int = 1,
                 act: bool = True, pad: str = "reflect", norm: bool = True):
        super().__init__()
        p = k // 2
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=p, groups=groups, bias=not norm,
                              padding_mode=pad if p and norm else "zeros")
        self.norm = CondInstanceNorm(cout, num_styles) if norm else None
        self.act = act

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.norm is not None:
            y = self.norm(y, style)
        return F.relu(y) if self.act else y


class DWBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise 3x3, 1x1 project.

    ``light``: conditional instance norm after the depthwise conv only (the 1x1 convs carry a bias and
    fuse with their ReLU): a third of the normalisation passes, which dominate on CPU.
    """

    def __init__(self, c: int, expand: int, num_styles: int, pad: str, light: bool = False):
        super().__init__()
        m = c * expand
        self.pw1 = ConvNormAct(c, m, 1, num_styles, norm=not light)
        self.dw = ConvNormAct(m, m, 3, num_styles, groups=m, pad=pad)
        self.pw2 = ConvNormAct(m, c, 1, num_styles, act=False, norm=not light)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.dw(self.pw1(x, style), style), style)


class FullBlock(nn.Module):
    """Johnson's residual block: two 3x3 convs."""

    def __init__(self, c: int, num_styles: int, pad: str):
        super().__init__()
        self.c1 = ConvNormAct(c, c, 3, num_styles, pad=pad)
        self.c2 = ConvNormAct(c, c, 3, num_styles, act=False, pad=pad)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.c2(self.c1(x, style), style)


class StylizerNet(nn.Module):
    """``forward(image (N,3,H,W) RGB [0,1], style (N,S) weights) -> (N,3,H,W) RGB [0,1]``."""

    def __init__(self, cfg: StylizerConfig):
        super().__init__()
        self.cfg = cfg
        s, c = cfg.num_styles, 3
        self.down = nn.ModuleList()
        r = 1
        for ch, k, st in cfg.down:
            r *= st
            self.down.append(ConvNormAct(c, ch, k, s, stride=st, pad=cfg.pad, norm=r >= cfg.norm_from))
            c = ch
        self.blocks = nn.ModuleList(
            DWBlock(c, cfg.expand, s, cfg.pad, light=cfg.block == "dw_light") if cfg.block.startswith("dw")
            else FullBlock(c, s, cfg.pad)
            for _ in range(cfg.blocks)
        )
        self.up_proj = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for ch, k in cfg.up:  # narrow first (cheap, at the lower resolution), then upsample
            self.up_proj.append(ConvNormAct(c, ch, 1, s, act=False, norm=r >= cfg.norm_from))
            r //= 2
            self.up_conv.append(ConvNormAct(ch, ch, k, s, groups=ch if cfg.up_depthwise else 1, pad=cfg.pad,
                                            norm=r >= cfg.norm_from))
            c = ch
        # Which encoder map (by index) each decoder stage adds: same resolution and width. Decided
        # here, not from runtime shapes, so the traced ONNX graph equals the eager one.
        self.skip_from: list[int] = []
        res = [1]
        for _, _, st in cfg.down:
            res.append(res[-1] * st)
        for j, (ch, _) in enumerate(cfg.up):
            r = cfg.stride // 2 ** (j + 1)  # resolution after this stage's upsampling
            src = [i for i, (dc, _, _) in enumerate(cfg.down) if res[i + 1] == r and dc == ch] if cfg.skip else []
            self.skip_from.append(src[-1] if src else -1)
        self.out = nn.Conv2d(c, 3 * cfg.shuffle ** 2, cfg.out_kernel, padding=cfg.out_kernel // 2,
                             padding_mode=cfg.pad if cfg.out_kernel > 1 else "zeros")

    @property
    def stride(self) -> int:
        return self.cfg.stride

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = image
        feats = []
        for m in self.down:
            x = m(x, style)
            feats.append(x)
        for m in self.blocks:
            x = m(x, style)
        for proj, conv, src in zip(self.up_proj, self.up_conv, self.skip_from):
            x = F.interpolate(proj(x, style), scale_factor=2.0, mode="nearest")
            if src >= 0:
                x = x + feats[src]
            x = conv(F.relu(x), style)
        y = self.out(x)
        if self.cfg.shuffle > 1:
            y = F.pixel_shuffle(y, self.cfg.shuffle)
        return torch.sigmoid(y)


def build_stylizer(cfg: StylizerConfig | dict) -> StylizerNet:
    if isinstance(cfg, dict):
        cfg = StylizerConfig.from_dict(cfg)
    return StylizerNet(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
