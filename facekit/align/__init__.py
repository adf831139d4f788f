"""Alignment: similarity transform from landmarks to a canonical template."""
from .align import AlignConfig, AlignedFace, align_face, landmarks_to_ibug68
from .template import EYE_CENTRES, RIGID_POINTS, TEMPLATE_68, eye_centres, fit_template
from .transform import (compose_affine, estimate_similarity, invert_affine, rotation_about,
                        similarity_params, transform_points)

__all__ = ["AlignConfig", "AlignedFace", "align_face", "landmarks_to_ibug68", "TEMPLATE_68", "RIGID_POINTS",
           "EYE_CENTRES", "eye_centres", "fit_template", "estimate_similarity", "transform_points",
           "invert_affine", "compose_affine", "similarity_params", "rotation_about"]
