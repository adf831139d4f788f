"""The paper's "CNN (baseline)": the DE-GAN encoder trained directly as a classifier."""
from __future__ import annotations

import torch
from torch import nn

from .encoder import Encoder

__all__ = ["BaselineCNN"]


class BaselineCNN(nn.Module):
    """:class:`Encoder` + dropout + linear classifier. (B, C, S, S) -> logits (B, n_classes)."""

    def __init__(self, in_channels: int, n_classes: int, width: float = 1.0, feat_dim: int = 350,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, width, feat_dim)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(feat_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))
