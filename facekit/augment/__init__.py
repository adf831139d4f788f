"""Training-sample augmentation (pure numpy/OpenCV functions)."""
from .fivecrop import (PAPER_ANGLES, PATCH_NAMES, AugmentConfig, Augmented, augment_face, patch_offsets,
                       required_margin)

__all__ = ["PAPER_ANGLES", "PATCH_NAMES", "AugmentConfig", "Augmented", "augment_face", "patch_offsets",
           "required_margin"]
