"""Training-sample augmentation and patch geometry (pure numpy/OpenCV functions)."""
from .fivecrop import (PAPER_ANGLES, PATCH_NAMES, PATCH_POSITIONS, AugmentConfig, Augmented, augment_face,
                       patch_offsets, required_margin, sample_views)
from .geometry import PAPER_FACE_SIZE, PAPER_PATCH_SIZE, SampleGeometry, sample_geometry

__all__ = ["PAPER_ANGLES", "PATCH_NAMES", "PATCH_POSITIONS", "AugmentConfig", "Augmented", "augment_face",
           "patch_offsets", "required_margin", "sample_views", "SampleGeometry", "sample_geometry", "PAPER_FACE_SIZE",
           "PAPER_PATCH_SIZE"]
