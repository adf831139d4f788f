"""Stage 2: local CNNs on the encoder's expression-residue taps, fused with f(x)."""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import ConvBNELU, scaled

__all__ = ["LocalCNN", "LocalFusion"]


class LocalCNN(nn.Module):
    """One local CNN: ``n_down`` stride-2 conv-BN-ELU blocks (channels doubling, at most 256
    before ``width``) down to S/16, each followed by ``depth - 1`` stride-1 conv-BN-ELU
    layers, one more stride-1 conv-BN-ELU, global average pool, a fully connected layer
    (``hidden`` units, ELU) and its own classifier.

    ``forward(t)``: t (B, C_k, H, W) -> (hidden (B, hidden), logits (B, n_classes)).
    """

    def __init__(self, in_channels: int, n_down: int, n_classes: int, width: float = 1.0, hidden: int = 256,
                 dropout: float = 0.0, depth: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = ref = in_channels
        for _ in range(n_down):
            ref = min(2 * ref, 256)          # channels double at each halving (before ``width``)
            cout = scaled(ref, width)
            layers.append(ConvBNELU(cin, cout, 2))
            layers.extend(ConvBNELU(cout, cout, 1) for _ in range(depth - 1))
            cin = cout
        layers.append(ConvBNELU(cin, cin, 1))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, hidden), nn.ELU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.features(t))
        return h, self.classifier(h)


class LocalFusion(nn.Module):
    """Four :class:`LocalCNN` (taps t1..t4) and the fused classifier over [f(x), h1..h4].

    ``fuse="hidden"`` concatenates each local CNN's last FC layer (its hidden
    activations); ``fuse="logits"`` concatenates their class scores instead.

    ``forward(f, taps)``: f (B, feat_dim), taps as from ``Encoder.forward_taps`` ->
    list of five logit tensors (B, n_classes): [local1, local2, local3, local4, fused].
    """

    def __init__(self, tap_channels: list[int], feat_dim: int, n_classes: int, width: float = 1.0,
                 hidden: int = 256, dropout: float = 0.0, fuse: str = "hidden", detach: bool = False,
                 depth: int = 1) -> None:
        super().__init__()
        n = len(tap_channels)
        self.locals = nn.ModuleList(
            LocalCNN(c, n - i, n_classes, width, hidden, dropout, depth) for i, c in enumerate(tap_channels))
        self.fuse, self.detach = fuse, detach
        fused_in = feat_dim + n * (hidden if fuse == "hidden" else n_classes)
        self.fused = nn.Sequential(nn.Dropout(dropout), nn.Linear(fused_in, n_classes))

    def forward(self, f: torch.Tensor, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = [m(t) for m, t in zip(self.locals, taps)]
        parts = [h if self.fuse == "hidden" else logit for h, logit in outs]
        if self.detach:
            parts = [p.detach() for p in parts]
        fused = self.fused(torch.cat([f, *parts], dim=1))
        return [logit for _, logit in outs] + [fused]
