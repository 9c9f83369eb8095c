"""The classic Keras CIFAR-10 tutorial CNN: a from-scratch baseline to measure transfer learning against.

Three 3x3 'valid' convolutions (32, 64, 64) with two 2x2 max-pools, a 64-unit dense layer and the
class layer; about 122k parameters at 32x32.
"""

from __future__ import annotations

import torch
from torch import nn


class SeedCNN(nn.Module):
    def __init__(self, num_classes: int = 10, img_size: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(inplace=True),
        )
        side = ((img_size - 2) // 2 - 2) // 2 - 2
        if side < 1:
            raise ValueError(f"seed_cnn needs images of at least 18 px, got {img_size}")
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 64), nn.ReLU(inplace=True), nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: RGB in [0, 1], (N, 3, img_size, img_size)."""
        return self.classifier(self.features(x))
