"""uint8 sample batches -> network input on the training device, augmentation included.

:class:`BatchTransform` turns a batch into network input with one ``grid_sample``
(rotation, crop inside the face box, mirror and resize to ``image_size`` together), so
on-the-fly augmentation costs about as much as a resize. Where the crop is taken (face box,
patch size, the five patch positions) comes from :class:`facekit.augment.SampleGeometry`.
"""
from __future__ import annotations

import math

import torch

from facekit.augment import PAPER_ANGLES, PATCH_NAMES, SampleGeometry, sample_views

from ..config import Data, DeganConfig
from .fileinfo import FileInfo

__all__ = ["BatchTransform", "View", "paper_views", "scoring_views", "make_transform"]

#: one rendered view of a canvas: (patch index 0..4 in PATCH_NAMES order, angle in degrees, flip 0/1)
View = tuple[int, float, int]


def paper_views() -> list[View]:
    """The paper's 110 (patch, angle, flip) views of :data:`facekit.augment.PAPER_ANGLES`: patch by
    patch, the un-rotated view first and then by ascending angle, each as is and mirrored. (The
    order in which a face's scores are summed, so it decides the last digit of their mean.)"""
    angles = sorted(PAPER_ANGLES, key=lambda a: (a != 0, a))
    return [(p, a, f) for p in range(len(PATCH_NAMES)) for a in angles for f in (0, 1)]


def scoring_views(name: str) -> list[View | None]:
    """Views scored per test face of a canvas file for ``eval.test_views`` = ``name``
    (``None`` is the plain centre view)."""
    return {"all": paper_views(), "mirror": [None, (0, 0.0, 1)]}.get(name, [None])


class BatchTransform:
    """uint8 images -> float network input in [-1, 1], (B, C, S, S), on the images' device.

    For canvas files (``augment none``) the output is the ``patch_size`` crop of
    the face box, resized to ``image_size``; with ``train=True`` and online
    augmentation each image gets a random rotation in ``[-rotate_deg, rotate_deg]``
    about the face centre, a random crop position inside the face box, a random
    mirror and optionally a random zoom, all in one ``grid_sample``. Stored
    patches (paper augmentation) are only resized; online augmentation on them
    rotates, mirrors and zooms the patch.

    ``data.augment="paper"`` on a canvas file: each image is rendered as the view its
    batch's ``view`` index names (:func:`facekit.augment.sample_views` order: the
    patch at its :meth:`~facekit.augment.SampleGeometry.offsets` position, the
    angle about the face centre, the mirror), the same view a 110x file stores
    as its copy of that index.
    """

    def __init__(self, geometry: SampleGeometry, data: Data, image_size: int, train: bool) -> None:
        self.image_size = image_size
        self.stored = geometry.stored_patches
        self.online = train and (data.augment == "online" or (data.augment == "auto" and not self.stored))
        self.rotate, self.crop_jitter = data.rotate_deg, data.crop_jitter
        self.flip, self.scale = data.flip, data.scale_jitter
        self.canvas = geometry.sample_size
        self.box = tuple(float(v) for v in geometry.crop_box)
        self.patch = float(geometry.patch_size)
        self.offsets = [(float(x), float(y)) for x, y in geometry.offsets()]
        patch, angle, flip = sample_views()
        #: (K, 4) float32: per view index, the patch's x and y offset, the angle and the mirror flag
        self.view_table = torch.tensor([[*self.offsets[int(p)], float(a), float(f)]
                                        for p, a, f in zip(patch, angle, flip)], dtype=torch.float32)

    def theta(self, n: int, angle: torch.Tensor, ox: torch.Tensor, oy: torch.Tensor, flip: torch.Tensor,
              scale: torch.Tensor) -> torch.Tensor:
        """(n, 2, 3) affine maps from output coordinates to canvas coordinates (``affine_grid`` convention).

        ``angle`` degrees (counter-clockwise on screen), ``ox``/``oy`` patch offsets
        inside the face box in pixels, ``flip`` 0/1, ``scale`` zoom (1 = none).
        """
        bx, by, bs = self.box
        c = float(self.canvas)
        cfx, cfy = bx + bs / 2, by + bs / 2                  # face centre: rotation centre
        ccx, ccy = bx + ox + self.patch / 2, by + oy + self.patch / 2   # crop centre
        a = angle * math.pi / 180
        cos, sin = torch.cos(a), torch.sin(a)
        half = self.patch / 2 / scale
        sx = torch.where(flip > 0, -half, half)
        # canvas point q = Rinv (p - cf) + cf, p = cc + (half * F) u ; R rotates ccw on screen (y down)
        r00, r01, r10, r11 = cos, -sin, sin, cos          # inverse of a ccw-on-screen rotation
        dx, dy = ccx - cfx, ccy - cfy
        t = torch.zeros(n, 2, 3, dtype=torch.float32, device=angle.device)
        t[:, 0, 0] = r00 * sx * 2 / c
        t[:, 0, 1] = r01 * half * 2 / c
        t[:, 1, 0] = r10 * sx * 2 / c
        t[:, 1, 1] = r11 * half * 2 / c
        t[:, 0, 2] = (r00 * dx + r01 * dy + cfx) * 2 / c - 1
        t[:, 1, 2] = (r10 * dx + r11 * dy + cfy) * 2 / c - 1
        return t

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 view: View | None = None, view_index: torch.Tensor | None = None) -> torch.Tensor:
        """Transform a batch (B, C, H, W) uint8 -> (B, C, S, S) float.

        ``view`` = (patch 0..4, angle, flip) renders one of the paper's 110 test
        views of a canvas file for the whole batch; ``view_index`` (B,) int64 renders
        each image's own view (an index into :func:`facekit.augment.sample_views`).
        Both are ignored for stored patches and under online augmentation.
        """
        n, dev = images.shape[0], images.device
        x = images.float().div_(127.5).sub_(1.0)
        zeros = torch.zeros(n, device=dev)
        slack = self.box[2] - self.patch
        cx, cy = self.offsets[0]
        angle, ox, oy, flip, scale = zeros, zeros + cx, zeros + cy, zeros, zeros + 1
        if self.online:
            def rand(lo: float, hi: float) -> torch.Tensor:
                return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(dev)
            angle = rand(-self.rotate, self.rotate)
            if self.crop_jitter and slack > 0:
                ox, oy = rand(0, slack), rand(0, slack)
            if self.flip:
                flip = (torch.rand(n, generator=generator) < 0.5).float().to(dev)
            if self.scale > 0:
                scale = rand(1 - self.scale, 1 + self.scale)
        elif view_index is not None and not self.stored:
            ox, oy, angle, flip = self.view_table[view_index.cpu()].to(dev).unbind(1)
        elif view is not None and not self.stored:
            p, a, f = view
            ox, oy = zeros + self.offsets[p][0], zeros + self.offsets[p][1]
            angle, flip = zeros + a, zeros + f
        if not self.online and view is None and self.stored and x.shape[-1] == self.image_size:
            return x
        theta = self.theta(n, angle, ox, oy, flip, scale)
        grid = torch.nn.functional.affine_grid(theta, [n, x.shape[1], self.image_size, self.image_size],
                                               align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_transform(info: FileInfo, cfg: DeganConfig, train: bool) -> BatchTransform:
    """The :class:`BatchTransform` of ``cfg`` for ``info``'s samples."""
    return BatchTransform(info.geometry(cfg.data.patch_size), cfg.data, cfg.arch.image_size, train)
