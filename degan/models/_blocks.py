"""Shared building blocks: CASIA-Net widths, conv-BN-ELU, weight initialisation."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["CASIA_STAGES", "DECODER_STAGES", "scaled", "ConvBNELU", "DeconvBNELU", "init_weights"]

#: CASIA-Net / DR-GAN encoder: one list of (out_channels, stride) per stage; the
#: first conv of stages 2-5 halves the resolution (96 -> 48 -> 24 -> 12 -> 6).
#: The last conv of stage 5 has ``feat_dim`` channels (added by the encoder).
CASIA_STAGES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((32, 1), (64, 1)),
    ((64, 2), (64, 1), (128, 1)),
    ((128, 2), (96, 1), (192, 1)),
    ((192, 2), (128, 1), (256, 1)),
    ((256, 2), (160, 1)),
)

#: DR-GAN decoder (mirror of the encoder with transposed convolutions): the FC
#: output has 320 channels at 1/16 resolution, then (out_channels, stride) per layer.
DECODER_FC_CHANNELS = 320
DECODER_STAGES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((160, 1), (256, 1)),
    ((256, 2), (128, 1), (192, 1)),
    ((192, 2), (96, 1), (128, 1)),
    ((128, 2), (64, 1), (64, 1)),
    ((64, 2), (32, 1)),
)


def scaled(channels: int, width: float, minimum: int = 4) -> int:
    """``channels * width`` rounded, at least ``minimum``."""
    return max(minimum, int(round(channels * width)))


class ConvBNELU(nn.Sequential):
    """3x3 convolution (stride 1 or 2, 'same' padding), BatchNorm, ELU. (B,Ci,H,W) -> (B,Co,H/s,W/s)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ELU(inplace=True))


class DeconvBNELU(nn.Sequential):
    """3x3 transposed convolution (stride 2 doubles H and W), BatchNorm, ELU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.ConvTranspose2d(cin, cout, 3, stride, 1, output_padding=stride - 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ELU(inplace=True))


@torch.no_grad()
def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's initialisation: conv/linear weights ~ N(0, std), biases 0; BN gamma ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
