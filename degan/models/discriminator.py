"""D: a multi-task CNN with an expression(+fake) head and an identity head."""
from __future__ import annotations

import torch
from torch import nn

from .encoder import Encoder

__all__ = ["Discriminator"]


class Discriminator(nn.Module):
    """CASIA-Net trunk (own weights) with two linear heads.

    ``forward(x)``: x (B, C, S, S) -> (expr_logits (B, n_expressions + 1), id_logits (B, n_identities)).
    The last expression logit (index ``n_expressions``) is "fake".
    """

    def __init__(self, in_channels: int, n_expressions: int, n_identities: int, width: float = 1.0,
                 feat_dim: int = 350) -> None:
        super().__init__()
        self.n_expressions, self.n_identities = n_expressions, n_identities
        self.trunk = Encoder(in_channels, width, feat_dim)
        self.head_expr = nn.Linear(feat_dim, n_expressions + 1)
        self.head_id = nn.Linear(feat_dim, n_identities)

    @property
    def fake_index(self) -> int:
        return self.n_expressions

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.head_expr(h), self.head_id(h)
