"""G_de: synthesises x_bar from [f(x), identity code, noise]."""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import DECODER_FC_CHANNELS, DECODER_STAGES, DeconvBNELU, scaled

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """DR-GAN decoder: FC to (320w, S/16, S/16), then transposed-conv stages mirroring the encoder, tanh.

    ``forward(f, identity, z)``: f (B, feat_dim) float, identity (B,) int64 in
    [0, n_identities) (one-hot encoded here) or (B, n_identities) float code,
    z (B, noise_dim) float -> image (B, out_channels, S, S) in [-1, 1].
    """

    def __init__(self, out_channels: int, n_identities: int, image_size: int = 96, width: float = 1.0,
                 feat_dim: int = 350, noise_dim: int = 50) -> None:
        super().__init__()
        self.n_identities, self.noise_dim, self.feat_dim = n_identities, noise_dim, feat_dim
        self.base = image_size // 16
        c0 = scaled(DECODER_FC_CHANNELS, width)
        self.c0 = c0
        self.fc = nn.Linear(feat_dim + n_identities + noise_dim, c0 * self.base * self.base)
        self.fc_act = nn.Sequential(nn.BatchNorm2d(c0), nn.ELU(inplace=True))
        layers: list[nn.Module] = []
        cin = c0
        for spec in DECODER_STAGES:
            for cout, stride in spec:
                cout = scaled(cout, width)
                layers.append(DeconvBNELU(cin, cout, stride))
                cin = cout
        layers += [nn.ConvTranspose2d(cin, out_channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def identity_code(self, identity: torch.Tensor) -> torch.Tensor:
        """(B,) int64 -> (B, n_identities) one-hot float; float codes pass through."""
        if identity.dtype.is_floating_point:
            return identity
        return nn.functional.one_hot(identity, self.n_identities).float()

    def forward(self, f: torch.Tensor, identity: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = f.new_zeros(f.shape[0], self.noise_dim)
        code = self.identity_code(identity).to(f.dtype)
        h = self.fc(torch.cat([f, code, z], dim=1)).view(-1, self.c0, self.base, self.base)
        return self.body(self.fc_act(h))
