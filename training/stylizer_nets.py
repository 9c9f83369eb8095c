"""Feed-forward multi-style stylizers: one class, three registered sizes (nano, small, base).

Design choices, each for deployment:
- Normalisation is BatchNorm (a fixed per-channel affine at inference, folded into the convs by
  the ONNX exporter) followed by a style-conditioned affine (FiLM): ``gamma = style @ G``,
  ``beta = style @ B``. Nothing computes statistics over the image at run time, so FP16/INT8/TensorRT
  cannot overflow a variance the way instance norm does, a frame's output does not depend on the
  frame's own statistics (less flicker), and a style vector that mixes styles blends the affines.
- Work happens at 1/4 resolution or lower on ``nano``: space-to-depth (pixel-unshuffle) in,
  depthwise-separable residual blocks, and resize-then-conv / pixel-shuffle out (no transposed
  convolutions, so no checkerboard artefacts).
- Optional half-resolution detail branch (``detail`` channels): a stride-2 conv of the image plus the
  upsampled last features, whose output is added to the main output before the sigmoid. It gives a
  1/4-resolution net a view of edges at 1/2 resolution: 12% more FLOPs (``detail=16`` on nano at 640x480:
  1.31 vs 1.17 GFLOP) but 45-50% more latency on ONNX Runtime CPU, as the half-resolution maps are
  memory-bound (README, stylizer quality).
- Fully convolutional: any H and W that are multiples of ``stride``.
- A trained net can grow (more residual blocks, a detail branch, a 3x3 output conv, full instead of
  depthwise upsampling convs) and keep its behaviour: the new parts start as the identity
  (``load_grown``), so a short fine-tune adds capacity without training afresh.
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

    ``prod(stem strides) == 2 ** len(up) * out_shuffle`` so the output has the input's size.
    """

    size: str = "nano"
    num_styles: int = 1
    stem: tuple[tuple[int, int, int], ...] = ((32, 4, 4), (64, 3, 2))  # (channels, kernel, stride) convs
    blocks: int = 5  # residual blocks at the lowest resolution
    block: str = "dw"  # dw: depthwise-separable inverted residual | full: two 3x3 convs (Johnson)
    expand: int = 2  # width multiplier inside dw blocks
    up: tuple[tuple[int, int], ...] = ((32, 3),)  # (channels, kernel): 1x1 conv, bilinear x2, (+skip), kxk conv
    up_depthwise: bool = True  # the kxk conv after each upsample is depthwise (cheap) or full
    skip: bool = True  # add the stem feature map of the same resolution after upsampling (U-Net style)
    out_shuffle: int = 4  # final conv to 3*k*k channels + pixel shuffle by k (1 = plain conv)
    out_kernel: int = 1
    detail: int = 0  # channels of the half-resolution detail branch (0: none; needs an even out_shuffle)
    pad: str = "zeros"  # reflect: no image-border cue, so no frame artefacts | zeros: cheapest

    @property
    def stride(self) -> int:
        """H and W must be multiples of this."""
        s = 1
        for _, _, st in self.stem:
            s *= st
        return s

    @property
    def min_size(self) -> int:
        return self.stride * 2

    def to_dict(self) -> dict:
        return _lists(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "StylizerConfig":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: _tuples(v) for k, v in d.items() if k in known})


def _lists(v):
    if isinstance(v, (tuple, list)):
        return [_lists(x) for x in v]
    if isinstance(v, dict):
        return {k: _lists(x) for k, x in v.items()}
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
    """CPU real-time: a 4x4 patchify conv in, blocks at 1/8, pixel shuffle out; no full-res conv."""
    return StylizerConfig(**{**dict(size="nano", pad="reflect"), **kw})


@register
def small(**kw) -> StylizerConfig:
    """Laptop/Jetson: full-resolution 3x3 convs at both ends, depthwise blocks at 1/4."""
    return StylizerConfig(**{**dict(size="small", stem=((16, 3, 1), (32, 3, 2), (64, 3, 2)), blocks=6, block="dw",
                                    expand=3, up=((32, 3), (16, 3)), up_depthwise=False, skip=True, out_shuffle=1,
                                    out_kernel=3, pad="reflect"), **kw})


@register
def base(**kw) -> StylizerConfig:
    """Johnson et al.-sized (9x9 ends, 128-channel residual blocks at 1/4) for GPUs."""
    return StylizerConfig(**{**dict(size="base", stem=((32, 9, 1), (64, 3, 2), (128, 3, 2)), blocks=5, block="full",
                                    expand=1, up=((64, 3), (32, 3)), up_depthwise=False, skip=False, out_shuffle=1,
                                    out_kernel=9, pad="reflect"), **kw})


def config_for(size: str, num_styles: int, **kw) -> StylizerConfig:
    if size not in _REGISTRY:
        raise ValueError(f"unknown stylizer size {size!r}; choose from {', '.join(_REGISTRY)}")
    cfg = _REGISTRY[size](num_styles=num_styles, **kw)
    if cfg.stride != 2 ** len(cfg.up) * cfg.out_shuffle:
        raise ValueError(f"stem stride {cfg.stride} != 2**len(up) * out_shuffle for {cfg}")
    if cfg.detail and cfg.out_shuffle % 2:
        raise ValueError(f"a detail branch needs an even out_shuffle, not {cfg.out_shuffle}")
    return cfg


class StyleAffine(nn.Module):
    """BatchNorm without its own affine, then a per-style scale and shift mixed by the style vector."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        g = (style @ self.gamma)[:, :, None, None]
        b = (style @ self.beta)[:, :, None, None]
        return self.bn(x) * g + b


class ConvNormAct(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, num_styles: int, stride: int = 1, groups: int = 1,
                 act: bool = True, pad: str = "zeros"):
        super().__init__()
        p = (k - stride + 1) // 2 if k >= stride else 0
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=p, groups=groups, bias=False,
                              padding_mode=pad if p else "zeros")
        self.norm = StyleAffine(cout, num_styles)
        self.act = act

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x), style)
        return F.relu(y) if self.act else y


class DWBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise 3x3, 1x1 project; style affine after each."""

    def __init__(self, c: int, expand: int, num_styles: int, pad: str = "zeros"):
        super().__init__()
        m = c * expand
        self.pw1 = ConvNormAct(c, m, 1, num_styles)
        self.dw = ConvNormAct(m, m, 3, num_styles, groups=m, pad=pad)
        self.pw2 = ConvNormAct(m, c, 1, num_styles, act=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.dw(self.pw1(x, style), style), style)


class FullBlock(nn.Module):
    def __init__(self, c: int, num_styles: int, pad: str = "zeros"):
        super().__init__()
        self.c1 = ConvNormAct(c, c, 3, num_styles, pad=pad)
        self.c2 = ConvNormAct(c, c, 3, num_styles, act=False, pad=pad)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.c2(self.c1(x, style), style)


class Stylizer(nn.Module):
    """``forward(image (N,3,H,W) RGB [0,1], style (N,S) weights) -> (N,3,H,W) RGB [0,1]``."""

    def __init__(self, cfg: StylizerConfig):
        super().__init__()
        self.cfg = cfg
        s = cfg.num_styles
        c = 3
        self.stem = nn.ModuleList()
        for ch, k, st in cfg.stem:
            self.stem.append(ConvNormAct(c, ch, k, s, stride=st, pad=cfg.pad))
            c = ch
        self.blocks = nn.ModuleList(
            DWBlock(c, cfg.expand, s, cfg.pad) if cfg.block == "dw" else FullBlock(c, s, cfg.pad)
            for _ in range(cfg.blocks)
        )
        self.up_proj = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for ch, k in cfg.up:
            self.up_proj.append(ConvNormAct(c, ch, 1, s, act=False))
            self.up_conv.append(ConvNormAct(ch, ch, k, s, groups=ch if cfg.up_depthwise else 1, pad=cfg.pad))
            c = ch
        # Which stem output (by index) each up stage adds as a skip: same resolution and channels.
        # Decided here, not from runtime shapes, so the traced ONNX graph equals the eager one.
        factors, f = [], 1
        for _, _, st in cfg.stem:
            f *= st
            factors.append(f)
        self.skip_from: list[int] = []
        for j, (ch, _) in enumerate(cfg.up):
            r = cfg.stride // 2 ** (j + 1)
            src = [i for i, (sc, _, _) in enumerate(cfg.stem) if factors[i] == r and sc == ch] if cfg.skip else []
            self.skip_from.append(src[-1] if src else -1)
        k = cfg.out_shuffle
        self.out = nn.Conv2d(c, 3 * k * k, cfg.out_kernel, padding=cfg.out_kernel // 2,
                             padding_mode=cfg.pad if cfg.out_kernel > 1 else "zeros")
        if cfg.detail:
            d = cfg.detail
            self.detail_in = ConvNormAct(3, d, 3, s, stride=2, pad=cfg.pad)
            self.detail_proj = ConvNormAct(c, d, 1, s, act=False)
            self.detail_conv = ConvNormAct(d, d, 3, s, groups=d, pad=cfg.pad)
            self.detail_out = nn.Conv2d(d, 3 * 4, 1)
            nn.init.zeros_(self.detail_out.weight)  # starts as "no change"
            nn.init.zeros_(self.detail_out.bias)
        self._init_shuffle()
        if cfg.detail:
            self._permute_out(two_step_order(k))

    def _init_shuffle(self) -> None:
        """ICNR: start every sub-pixel of a pixel-shuffle group equal, so the output starts smooth."""
        k = self.cfg.out_shuffle
        if k == 1:
            return
        with torch.no_grad():
            w = self.out.weight[:3].clone()
            b = self.out.bias[:3].clone()
            self.out.weight.copy_(w.repeat_interleave(k * k, dim=0))
            self.out.bias.copy_(b.repeat_interleave(k * k, dim=0))

    def _permute_out(self, order: torch.Tensor) -> None:
        with torch.no_grad():
            self.out.weight.copy_(self.out.weight[order].clone())
            self.out.bias.copy_(self.out.bias[order].clone())

    @property
    def stride(self) -> int:
        return self.cfg.stride

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = image
        feats = []
        for m in self.stem:
            x = m(x, style)
            feats.append(x)
        for m in self.blocks:
            x = m(x, style)
        for proj, conv, src in zip(self.up_proj, self.up_conv, self.skip_from):
            x = F.interpolate(proj(x, style), scale_factor=2.0, mode="bilinear", align_corners=False)
            if src >= 0:
                x = x + feats[src]
            x = conv(F.relu(x), style)
        y = self.out(x)
        k = self.cfg.out_shuffle
        if self.cfg.detail:  # the detail is added at 1/2 resolution, between two shuffles (see two_step_order)
            up = F.interpolate(self.detail_proj(x, style), scale_factor=k / 2, mode="bilinear", align_corners=False)
            z = self.detail_conv(F.relu(self.detail_in(image, style) + up), style)
            y = F.pixel_shuffle(y, k // 2) if k > 2 else y
            y = F.pixel_shuffle(y + self.detail_out(z), 2)
        elif k > 1:
            y = F.pixel_shuffle(y, k)
        return torch.sigmoid(y)

    def load_grown(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Load the weights of a smaller net of the same design; the parts it lacks start as the identity.

        Extra residual blocks get a zero final scale and shift (they add nothing), a new detail branch a
        zero output conv; a wider output kernel or a full (not depthwise) upsampling conv gets the old
        kernel at its centre or diagonal and zeros elsewhere. So the grown net computes what the smaller
        one did. Returns the keys that are new or widened.
        """
        own = self.state_dict()
        fitted = {k: _widen(v, own[k].shape) if k in own else v for k, v in state.items()}
        widened = [k for k in state if fitted[k] is not state[k]]
        state = fitted
        wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
        if wrong:
            raise ValueError(f"not a smaller net of this design: {len(wrong)} tensors do not fit, e.g. {wrong[0]}")
        new = [k for k in own if k not in state]
        grown = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("blocks.") else "") for k in new}
        if any(not g.startswith(("blocks.", "detail_")) for g in grown):
            raise ValueError(f"the smaller net lacks parts that cannot start as the identity: {sorted(grown)}")
        state = dict(state)
        if self.cfg.detail and "detail_out.weight" not in state:  # the output conv's channels change order
            order = two_step_order(self.cfg.out_shuffle)
            state["out.weight"], state["out.bias"] = state["out.weight"][order], state["out.bias"][order]
        self.load_state_dict({**own, **state})
        with torch.no_grad():
            for g in grown:
                if g.startswith("blocks."):
                    block = self.get_submodule(g)
                    last = block.pw2.norm if isinstance(block, DWBlock) else block.c2.norm
                    last.gamma.zero_()
                    last.beta.zero_()
        return new + widened


def _widen(w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A conv kernel embedded in a bigger one that computes the same thing on the same input.

    (O, I, k, k) -> (O, I, K, K): the old kernel at the centre (odd k <= K). (O, 1, k, k) depthwise ->
    (O, O, k, k) full: each output reads only its own channel. Anything else comes back unchanged.
    """
    if w.dim() != 4 or w.shape == shape or w.shape[0] != shape[0]:
        return w
    o, i, k, _ = w.shape
    if i == 1 and shape[1] == o and shape[2:] == w.shape[2:]:
        full = torch.zeros(shape, dtype=w.dtype)
        full[torch.arange(o), torch.arange(o)] = w[:, 0]
        return full
    big = shape[2]
    if i == shape[1] and k % 2 and big % 2 and k < big and shape[2] == shape[3]:
        full = torch.zeros(shape, dtype=w.dtype)
        m = (big - k) // 2
        full[:, :, m:m + k, m:m + k] = w
        return full
    return w


def two_step_order(k: int) -> torch.Tensor:
    """Channel order that makes ``shuffle(shuffle(y, k/2), 2)`` equal ``shuffle(y_single_order, k)``.

    A net with a detail branch shuffles in two steps so the branch can be added at 1/2 resolution
    (12 channels) instead of at full resolution: one full-resolution op fewer. ``order[q]`` is the
    channel of the single-step layout that two-step channel ``q`` holds.
    """
    m = k // 2
    order = torch.empty(3 * k * k, dtype=torch.long)
    for c in range(3):
        for i2 in range(2):
            for j2 in range(2):
                for a in range(m):
                    for b in range(m):
                        q = (c * 4 + i2 * 2 + j2) * m * m + a * m + b
                        order[q] = c * k * k + (2 * a + i2) * k + (2 * b + j2)
    return order


def build_stylizer(cfg: StylizerConfig | dict) -> Stylizer:
    if isinstance(cfg, dict):
        cfg = StylizerConfig.from_dict(cfg)
    return Stylizer(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
