"""DE-GAN networks: encoder G_en, decoder G_de, discriminator D, stage-2 local CNNs, the CNN baseline."""
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
from .local import LocalCNN, LocalFusion

__all__ = ["Encoder", "Decoder", "Discriminator", "LocalCNN", "LocalFusion", "BaselineCNN", "PlainCNN", "Generator",
           "build_degan", "build_baseline", "DeganNets", "init_weights"]


class Generator(nn.Module):
    """G = G_en + G_de. ``forward(x, identity, z)``: (B,C,S,S) -> x_bar (B,C,S,S) in [-1, 1].

    ``expr_head`` (optional, ``cfg.expr_weight > 0``; not in the paper): a linear layer
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


def build_degan(cfg: DeganConfig, in_channels: int, n_expressions: int, n_identities: int) -> DeganNets:
    """All DE-GAN networks for ``cfg``, initialised N(0, cfg.init_std)."""
    enc = Encoder(in_channels, cfg.width, cfg.feat_dim)
    dec = Decoder(in_channels, n_identities, cfg.image_size, cfg.width, cfg.feat_dim, cfg.noise_dim)
    D = Discriminator(in_channels, n_expressions, n_identities, cfg.width, cfg.feat_dim)
    G = Generator(enc, dec)
    init_weights(G, cfg.init_std)
    init_weights(D, cfg.init_std)
    # the local CNNs are drawn after G and D are initialised, so stage 1's initial
    # weights do not depend on the stage-2 sizes (local_width, local_hidden, fuse)
    local = LocalFusion(enc.tap_channels, cfg.feat_dim, n_expressions, cfg.local_width, cfg.local_hidden,
                        cfg.dropout, cfg.fuse, cfg.fuse_detach, cfg.local_depth)
    init_weights(local, cfg.init_std)
    if cfg.expr_weight > 0:               # drawn last: G, D and the local CNNs start as without it
        G.expr_head = nn.Linear(cfg.feat_dim, n_expressions)
        init_weights(G.expr_head, cfg.init_std)
    return DeganNets(G, D, local)


def build_baseline(cfg: DeganConfig, in_channels: int, n_expressions: int) -> nn.Module:
    """The classifier of ``model="baseline"``: the paper's (G_en + linear, ``baseline_arch="encoder"``)
    or the plain 3-block CNN (``"cnn3"``), initialised N(0, cfg.init_std)."""
    model: nn.Module
    if cfg.baseline_arch == "cnn3":
        model = PlainCNN(in_channels, n_expressions, cfg.width, cfg.dropout)
    else:
        model = BaselineCNN(in_channels, n_expressions, cfg.width, cfg.feat_dim, cfg.dropout)
    init_weights(model, cfg.init_std)
    return model
