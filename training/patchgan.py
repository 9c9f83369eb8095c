"""A small style-conditional PatchGAN: tells patches of the style paintings from stylized outputs.

It outputs one logit map per style; each sample is judged on the map of its style (weighted by the
style vector, so blends work too). Spectral norm keeps it Lipschitz without batch statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

ADV_LOSSES = ("hinge", "lsgan")


class PatchDiscriminator(nn.Module):
    def __init__(self, num_styles: int, channels: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        c = 3
        for i in range(layers):
            out = channels * 2**i
            mods += [spectral_norm(nn.Conv2d(c, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c = out
        mods += [spectral_norm(nn.Conv2d(c, num_styles, 3, padding=1))]
        self.body = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1], (N,S) -> (N, H/8, W/8) patch logits."""
        maps = self.body(x * 2 - 1)
        return torch.einsum("nshw,ns->nhw", maps, style.to(maps.dtype))


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return (real - 1).pow(2).mean() + fake.pow(2).mean()


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return (fake - 1).pow(2).mean()


def style_patches(images: list[torch.Tensor], style_idx: torch.Tensor, size: int, gen: torch.Generator | None = None
                  ) -> torch.Tensor:
    """Random ``size``-pixel crops from each sample's style image (images: (1,3,h,w) each)."""
    out = []
    for s in style_idx.tolist():
        img = images[s]
        h, w = img.shape[-2:]
        if h < size or w < size:
            img = F.interpolate(img, scale_factor=size / min(h, w) + 1e-3, mode="bilinear", align_corners=False)
            h, w = img.shape[-2:]
        y = int(torch.randint(0, h - size + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        out.append(img[..., y:y + size, x:x + size])
    return torch.cat(out)
