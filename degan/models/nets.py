"""G = G_en + G_de, the three trainable parts of DE-GAN, and the builders of DE-GAN's and the
baseline's networks from a configuration."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import DeganConfig
from ._blocks import init_weights
from .baseline import BaselineCNN, PlainCNN
from .decoder import Decoder
from .discriminator import Discriminator
from .encoder import Encoder
from .local import LocalFusion

__all__ = ["Generator", "DeganNets", "build_degan", "build_baseline"]


class Generator(nn.Module):
    """G = G_en + G_de. ``forward(x, identity, z)``: (B,C,S,S) -> x_bar (B,C,S,S) in [-1, 1].

    ``expr_head`` (optional, ``stage1.expr_weight > 0``; not in the paper): a linear layer
    f(x) -> (B, N_e) expression logits. ``forward(..., expression=True)`` returns
    ``(x_bar, logits)`` from the same pass through G_en.
    """

    def __init__(self, encoder: Encoder, decoder: Decoder, expr_head: nn.Linear | None = None) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.expr_head = expr_head

    def forward(self, x: torch.Tensor, identity: torch.Tensor, z: torch.Tensor | None = None,
                expression: bool = False) -> Any:
        if expression and self.expr_head is None:
            raise ValueError("this generator has no expression head (expr_weight=0)")
        f = self.encoder(x)
        fake = self.decoder(f, identity, z)
        return (fake, self.expr_head(f)) if expression else fake


@dataclass
class DeganNets:
    """The three trainable parts of DE-GAN."""

    G: Generator
    D: Discriminator
    local: LocalFusion

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "local": self.local}

    def classify(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stage 2's prediction: G_en (no gradients) -> local CNNs + fused classifier.
        x (B, C, S, S) -> five (B, N_e) logit tensors [local1..local4, fused]."""
        with torch.no_grad():
            f, taps = self.G.encoder.forward_taps(x)
        return self.local(f, taps)


def build_degan(cfg: DeganConfig, in_channels: int, n_expressions: int, n_identities: int) -> DeganNets:
    """All DE-GAN networks for ``cfg``, initialised N(0, cfg.arch.init_std)."""
    a, s2 = cfg.arch, cfg.stage2
    enc = Encoder(in_channels, a.width, a.feat_dim)
    dec = Decoder(in_channels, n_identities, a.image_size, a.width, a.feat_dim, a.noise_dim)
    D = Discriminator(in_channels, n_expressions, n_identities, a.width, a.feat_dim)
    G = Generator(enc, dec)
    init_weights(G, a.init_std)
    init_weights(D, a.init_std)
    # the local CNNs are drawn after G and D are initialised, so stage 1's initial
    # weights do not depend on the stage-2 sizes (local_width, local_hidden, fuse)
    local = LocalFusion(enc.tap_channels, a.feat_dim, n_expressions, s2.local_width, s2.local_hidden,
                        s2.dropout, s2.fuse, s2.fuse_detach, s2.local_depth)
    init_weights(local, a.init_std)
    if cfg.stage1.expr_weight > 0:        # drawn last: G, D and the local CNNs start as without it
        G.expr_head = nn.Linear(a.feat_dim, n_expressions)
        init_weights(G.expr_head, a.init_std)
    return DeganNets(G, D, local)


def build_baseline(cfg: DeganConfig, in_channels: int, n_expressions: int) -> nn.Module:
    """The classifier of ``method="baseline"``: the paper's (G_en + linear, ``baseline.network="encoder"``)
    or the plain 3-block CNN (``"cnn3"``), initialised N(0, cfg.arch.init_std)."""
    a, b = cfg.arch, cfg.baseline
    model: nn.Module
    if b.network == "cnn3":
        model = PlainCNN(in_channels, n_expressions, a.width, b.dropout)
    else:
        model = BaselineCNN(in_channels, n_expressions, a.width, a.feat_dim, b.dropout)
    init_weights(model, a.init_std)
    return model

