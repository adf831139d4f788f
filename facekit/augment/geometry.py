"""Where a training patch is cut from a facekit file's samples: the face box, the canvas and the
patch size, from the file's metadata.

A file prepared with ``--augment none`` stores aligned canvases (the face box plus a margin);
a consumer cuts a patch from the face box (the centre patch for testing, anywhere in the box
when it augments). A file prepared with ``--augment paper`` stores the patches themselves.
:func:`sample_geometry` turns what the file records (``face_box`` and ``patch_size``
attributes, the sample shape, whether patches are stored) into one :class:`SampleGeometry`,
filling what an older or hand-made file leaves out:

* no face box (size 0): the whole canvas is the face;
* no ``patch_size``: the paper's 96 px;
* a patch as large as the face box or larger: the paper's ratio, 96 px of a 112-px box.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .fivecrop import patch_offsets

__all__ = ["SampleGeometry", "sample_geometry", "PAPER_FACE_SIZE", "PAPER_PATCH_SIZE"]

#: the paper's aligned face box and patch sides (pixels)
PAPER_FACE_SIZE, PAPER_PATCH_SIZE = 112, 96


@dataclass(frozen=True)
class SampleGeometry:
    """The geometry of one file's samples (pixels).

    ``sample_size``: side of a stored sample (the canvas, or a stored patch).
    ``face_box``: ``(x, y, size)`` of the face box in the aligned canvas (the frame of the
    stored landmarks). ``patch_size``: side of the patch a network sees, cut from the face
    box of a canvas (for stored patches: the sample itself). ``stored_patches``: the samples
    are the paper's augmented patches, not canvases.
    """

    sample_size: int
    face_box: tuple[int, int, int]
    patch_size: int
    stored_patches: bool

    @property
    def crop_box(self) -> tuple[int, int, int]:
        """``(x, y, size)`` of the region of a sample that patches are cut from: the face box of
        a canvas, the whole sample for stored patches."""
        return (0, 0, self.sample_size) if self.stored_patches else self.face_box

    def offsets(self) -> np.ndarray:
        """``(5, 2)`` float64 (x, y) offsets of the five paper patches inside :attr:`crop_box`
        (``facekit.augment.PATCH_NAMES`` order; sub-pixel, see :func:`patch_offsets`)."""
        return patch_offsets(self.crop_box[2], self.patch_size, exact=True)


def sample_geometry(sample_shape: Sequence[int], face_box: Sequence[int], patch_size: int, *,
                    stored_patches: bool, patch_override: int = 0) -> SampleGeometry:
    """The geometry of a file's samples from its metadata.

    Args:
        sample_shape: shape of one stored sample, ``(H, W)`` or ``(H, W, 3)`` (square).
        face_box: the file's ``face_box`` attribute ``(x, y, size)``; size 0 = not recorded.
        patch_size: the file's ``patch_size`` attribute; 0 = not recorded.
        stored_patches: the samples are stored patches (``--augment paper``).
        patch_override: a patch side asked for by the consumer (> 0), at most the face box;
            ignored for stored patches.

    Returns:
        For stored patches, the patch is the sample and the face box is the file's. For
        canvases: the face box (the whole canvas if not recorded) and the patch side: the
        override, else the file's ``patch_size`` (96 if not recorded) when it is smaller than
        the face box, else the paper's ratio ``round(box * 96 / 112)``.
    """
    side = int(sample_shape[0])
    box = tuple(int(v) for v in face_box)
    if stored_patches:
        return SampleGeometry(side, box, side, True)  # type: ignore[arg-type]
    if box[2] <= 0:
        box = (0, 0, side)
    size = box[2]
    if patch_override > 0:
        patch = min(int(patch_override), size)
    else:
        wanted = int(patch_size) if patch_size > 0 else PAPER_PATCH_SIZE
        patch = wanted if wanted < size else max(1, round(size * PAPER_PATCH_SIZE / PAPER_FACE_SIZE))
    return SampleGeometry(side, box, patch, False)  # type: ignore[arg-type]
