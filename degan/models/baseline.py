"""The paper's "CNN (baseline)": the DE-GAN encoder trained directly as a classifier; and a plain
3-block CNN as a reference outside the paper (``baseline.network="cnn3"``)."""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import scaled
from .encoder import Encoder

__all__ = ["BaselineCNN", "PlainCNN", "PLAIN_CNN_CHANNELS"]

#: channels of the three blocks of :class:`PlainCNN` at ``width=1`` (the ``cpu`` preset's 0.25: 16, 32, 64)
PLAIN_CNN_CHANNELS = (64, 128, 256)


class BaselineCNN(nn.Module):
    """:class:`Encoder` + dropout + linear classifier. (B, C, S, S) -> logits (B, n_classes)."""

    def __init__(self, in_channels: int, n_classes: int, width: float = 1.0, feat_dim: int = 350,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, width, feat_dim)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(feat_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))


class PlainCNN(nn.Module):
    """A plain 3-block CNN, the kind of model a plain-CNN calibration of CK+48 uses (not in
    the paper). Each block: two 3x3 conv-BN-ReLU layers, then 2x2 max-pooling (S -> S/8 over
    the three); channels ``PLAIN_CNN_CHANNELS`` x ``width``; then global average pooling,
    dropout and a linear classifier. (B, C, S, S) float -> logits (B, n_classes).
    """

    def __init__(self, in_channels: int, n_classes: int, width: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for c in PLAIN_CNN_CHANNELS:
            cout = scaled(c, width)
            for _ in range(2):
                layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
