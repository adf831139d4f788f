"""The 68-point iBUG (300-W / Multi-PIE) view of the 478-point MediaPipe mesh.

FER tools and papers use the 68-point markup; MediaPipe's Face Landmarker
returns 478 points (468 mesh + 10 iris). :data:`MESH_TO_IBUG68` picks, for each
iBUG point, the mesh vertex at the same anatomical place. "Left"/"right" below
are as seen in the image (iBUG convention: point 0 is on the image's left).

=========  =======================  ==============================================
iBUG       region                   mesh vertices
=========  =======================  ==============================================
0-16       jaw, image-left to right 234 93 132 58 172 136 150 176 152 400 379 365 397 288 361 323 454
17-21      left brow, outer->inner  70 63 105 66 107
22-26      right brow, inner->outer 336 296 334 293 300
27-30      nose bridge, top->tip    168 197 5 4
31-35      nostrils, left->right    98 97 2 326 327
36-41      left eye (outer corner,  33 160 158 133 153 144
           upper lid, inner corner,
           lower lid)
42-47      right eye (inner corner, 362 385 387 263 373 380
           upper lid, outer corner,
           lower lid)
48-59      outer lips, clockwise    61 40 37 0 267 270 291 321 314 17 84 91
           from the left corner
60-67      inner lips               78 81 13 311 308 402 14 178
=========  =======================  ==============================================

The jaw uses every vertex of the mesh's face-oval ring between the ears except
148/149 and 377/378, which keeps the 17 points evenly spread. Iris centres
(468 and 473) are exposed separately as :data:`IRIS_CENTRES`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MESH_TO_IBUG68", "IBUG68_FLIP", "IRIS_CENTRES", "to_ibug68", "IBUG68_REGIONS"]

MESH_TO_IBUG68 = np.array([
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,  # jaw
    70, 63, 105, 66, 107,                       # left brow
    336, 296, 334, 293, 300,                    # right brow
    168, 197, 5, 4,                             # nose bridge
    98, 97, 2, 326, 327,                        # nostrils
    33, 160, 158, 133, 153, 144,                # left eye
    362, 385, 387, 263, 373, 380,               # right eye
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips
    78, 81, 13, 311, 308, 402, 14, 178,         # inner lips
], dtype=np.intp)

#: index permutation that maps a mirrored face's iBUG points back to iBUG order
IBUG68_FLIP = np.array(
    [16 - i for i in range(17)]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65],
    dtype=np.intp)

#: mesh indices of the left and right iris centres (image left first)
IRIS_CENTRES = np.array([468, 473], dtype=np.intp)

IBUG68_REGIONS = {
    "jaw": slice(0, 17), "left_brow": slice(17, 22), "right_brow": slice(22, 27),
    "nose_bridge": slice(27, 31), "nostrils": slice(31, 36), "left_eye": slice(36, 42),
    "right_eye": slice(42, 48), "outer_lips": slice(48, 60), "inner_lips": slice(60, 68),
}


def to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """``(478, D)`` or ``(..., 478, D)`` mesh points -> ``(..., 68, D)`` iBUG points."""
    mesh = np.asarray(mesh)
    if mesh.ndim < 2 or mesh.shape[-2] < 468:
        raise ValueError(f"expected (..., 478, D) mesh landmarks, got shape {mesh.shape}")
    return mesh[..., MESH_TO_IBUG68, :]
