"""G_en: the CASIA-Net trunk that maps a face to f(x) and keeps four expression-residue taps."""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import CASIA_STAGES, ConvBNELU, scaled

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """CASIA-Net encoder (DR-GAN's G_en), channels scaled by ``width``.

    Five stages of 3x3 conv-BN-ELU; stages 2-5 start with a stride-2 conv
    (S -> S/2 -> S/4 -> S/8 -> S/16); stage 5 ends in ``feat_dim`` channels,
    average-pooled to f(x).

    ``forward(x)``: x (B, C, S, S) float in [-1, 1] -> f (B, feat_dim).
    ``forward_taps(x)``: (f, [t1, t2, t3, t4]) where t_k is the output of stage k,
    (B, C_k, S/2^(k-1), S/2^(k-1)): the four intermediate "expression residue" taps.
    """

    def __init__(self, in_channels: int = 1, width: float = 1.0, feat_dim: int = 350) -> None:
        super().__init__()
        self.in_channels, self.width, self.feat_dim = in_channels, width, feat_dim
        stages: list[nn.Sequential] = []
        cin = in_channels
        self.tap_channels: list[int] = []
        for i, spec in enumerate(CASIA_STAGES):
            layers = []
            for cout, stride in spec:
                cout = scaled(cout, width)
                layers.append(ConvBNELU(cin, cout, stride))
                cin = cout
            if i == len(CASIA_STAGES) - 1:
                layers.append(ConvBNELU(cin, feat_dim, 1))
            else:
                self.tap_channels.append(cin)
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        taps: list[torch.Tensor] = []
        for stage in self.stages[:-1]:
            x = stage(x)
            taps.append(x)
        x = self.stages[-1](x)
        return self.pool(x).flatten(1), taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.pool(x).flatten(1)
