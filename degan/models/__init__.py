"""DE-GAN networks: encoder G_en, decoder G_de, discriminator D, stage-2 local CNNs, the CNN baseline;
and copying pre-trained weights into them (:mod:`.pretrained`)."""
from __future__ import annotations

from ._blocks import init_weights
from .baseline import BaselineCNN, PlainCNN
from .decoder import Decoder
from .discriminator import Discriminator
from .encoder import Encoder
from .local import LocalCNN, LocalFusion
from .nets import DeganNets, Generator, build_baseline, build_degan
from .pretrained import load_pretrained

__all__ = ["Encoder", "Decoder", "Discriminator", "LocalCNN", "LocalFusion", "BaselineCNN", "PlainCNN", "Generator",
           "build_degan", "build_baseline", "DeganNets", "init_weights", "load_pretrained"]
