"""What one worker does: detect, align, augment and write one part (in a worker
process of :mod:`._pool`, or in the calling process for one-worker runs)."""
from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .._workers import OneOpenCVThread
from ..align import align_face
from ..augment import augment_face
from ..detect import Face, Landmarker
from ..errors import FileError, ImageReadError
from ..imageio import read_image, read_video_frames
from ..store import FaceRecord, PartWriter
from .config import PrepareConfig
from .plan import Part, WorkItem, relative_source

__all__ = ["PartResult", "PartProcessor"]

Progress = Callable[[int], None]


@dataclass
class PartResult:
    """Summary a worker returns for a finished part (small; crosses processes)."""

    index: int
    frames: int = 0
    faces: int = 0
    samples: int = 0
    rejects: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    reused: bool = False
    contents: dict[str, Any] | None = None   # PartWriter.contents: the assembly step need not reopen the part


class PartProcessor:
    """Holds one Landmarker and turns parts into part files."""

    def __init__(self, config: PrepareConfig, attrs: dict[str, Any]) -> None:
        self.config = config
        self.attrs = attrs
        self.align_cfg = config.align_config
        self.aug_cfg = config.augment_config
        self.root = Path(os.path.abspath(config.root))  # once: relative_source caches absolute roots
        canvas = self.align_cfg.canvas
        colour = () if config.grayscale else (3,)
        self.canvas_shape = (canvas, canvas, *colour)
        self.sample_shape = ((config.patch_size, config.patch_size, *colour) if self.aug_cfg
                             else self.canvas_shape)
        extras = config.pose_blendshapes
        self.landmarker = Landmarker(config.model, pose=extras, blendshapes=extras)
        self._cv_threads = OneOpenCVThread()      # restored on close: one-worker runs use the caller's process

    def close(self) -> None:
        self.landmarker.close()
        self._cv_threads.restore()

    def _frames(self, item: WorkItem) -> list[tuple[str, int, np.ndarray | FileError]]:
        """Decode the item's frames; errors are returned in place of the image."""
        out: list[tuple[str, int, np.ndarray | FileError]] = []
        videos: dict[str, list[int]] = {}
        for fr in item.frames:
            if fr.video:
                videos.setdefault(fr.path, []).append(fr.index)
        decoded: dict[tuple[str, int], np.ndarray | FileError] = {}
        for path, idx in videos.items():
            try:
                for i, img in zip(idx, read_video_frames(path, idx, max_pixels=self.config.max_pixels)):
                    decoded[(path, i)] = img
            except FileError as exc:
                for i in idx:
                    decoded[(path, i)] = exc
        for fr in item.frames:
            if fr.video:
                out.append((fr.path, fr.index, decoded[(fr.path, fr.index)]))
                continue
            try:
                out.append((fr.path, fr.index, read_image(fr.path, max_pixels=self.config.max_pixels)))
            except FileError as exc:
                out.append((fr.path, fr.index, exc))
        return out

    def process(self, part: Part, path: Path, progress: Progress | None = None,
                attrs: dict[str, Any] | None = None) -> PartResult:
        """Write ``part`` to ``path``; ``attrs`` (default: the constructor's) go into its metadata."""
        t0 = time.perf_counter()
        res = PartResult(part.index)
        attrs = {**(self.attrs if attrs is None else attrs), "part_index": part.index, "part_count": part.count,
                 "items_digest": part.items_digest(self.root)}
        with PartWriter(path, sample_shape=self.sample_shape, canvas_shape=self.canvas_shape,
                        storage=self.config.storage, attrs=attrs,
                        samples_are_faces=self.aug_cfg is None, face_data=self.config.pose_blendshapes) as writer:
            for item in part.items:
                for src, index, img in self._frames(item):
                    res.frames += 1
                    rel = relative_source(src, self.root)
                    where = f"{rel}#{index}" if any(f.video for f in item.frames) else rel
                    if isinstance(img, FileError):
                        writer.add_reject(where, img.reason)
                        res.rejects[img.reason] += 1
                    else:
                        try:
                            rec = self._face(img, item, rel, index, where)
                        except FileError as exc:
                            writer.add_reject(where, exc.reason)
                            res.rejects[exc.reason] += 1
                        except (cv2.error, MemoryError) as exc:    # one image must not end the run
                            reason = _failure(exc)
                            writer.add_reject(where, reason)
                            res.rejects[reason] += 1
                        else:
                            writer.add_face(rec)
                            res.faces += 1
                            res.samples += len(rec.samples)
                    if progress:
                        progress(1)
        res.contents = writer.contents
        res.seconds = time.perf_counter() - t0
        return res

    def _face(self, image: np.ndarray, item: WorkItem, source: str, index: int, where: str) -> FaceRecord:
        pixels = detector_pixels(image.shape[:2], self.landmarker.min_size, self.landmarker.pad)
        if pixels > self.config.max_pixels and pixels > 3 * image.shape[0] * image.shape[1]:   # enlarged past the limit
            raise ImageReadError(where, f"image is {image.shape[1]}x{image.shape[0]}: the landmarker would "
                                        f"enlarge it to {pixels / 1e6:.0f} megapixels (the limit is "
                                        f"{self.config.max_pixels / 1e6:g} megapixels, see --max-pixels)")
        face = self.landmarker.detect(image, path=where)
        aligned = align_face(image, face.landmarks, self.align_cfg)
        lm68 = aligned.landmarks68
        if self.aug_cfg is not None:
            aug = augment_face(aligned.image, aligned.box, self.aug_cfg, landmarks68=lm68)
            samples, s_lm, patch, angle, flip = aug.images, aug.landmarks, aug.patch, aug.angle, aug.flip
        else:
            samples, s_lm = aligned.image[None], lm68[None]
            patch, angle, flip = np.array([-1]), np.array([0.0]), np.array([0])
        return FaceRecord(source=source, subject=item.subject, sequence=item.sequence, label=item.label,
                          frame=index, image=aligned.image, landmarks=aligned.landmarks[:, :2],
                          matrix=aligned.matrix, samples=samples, sample_landmarks=s_lm,
                          patch=patch, angle=angle, flip=flip,
                          pose=_pose(face), blendshapes=face.blendshape_scores)


def _pose(face: Face) -> np.ndarray | None:
    """``(3,)`` float32 pitch, yaw, roll of ``face`` (NaN when its matrix is not a rotation),
    ``None`` when the landmarker was not asked for pose."""
    if face.matrix is None:
        return None
    try:
        return np.asarray(face.pose, np.float32)
    except (ValueError, np.linalg.LinAlgError):
        return np.full(3, np.nan, np.float32)


def detector_pixels(shape: tuple[int, int], min_size: int, pad: float) -> int:
    """Largest image (pixels) the landmarker builds from an ``(H, W)`` input: inputs whose
    shorter side is below ``min_size`` are enlarged to it and get a border of ``pad`` times
    the longer side on every side. A 20000x2 image (40 000 pixels) would become a
    1.9-million-pixel-wide strip with a 480 000-pixel border: terabytes."""
    h, w = int(shape[0]), int(shape[1])
    scale = max(1.0, min_size / max(1, min(h, w)))
    sh, sw = h * scale, w * scale
    border = math.ceil(pad * max(sh, sw)) if pad > 0 else 0
    return int((sh + 2 * border) * (sw + 2 * border))


def _failure(exc: BaseException) -> str:
    """Reject reason for an image that OpenCV or memory could not cope with."""
    if isinstance(exc, MemoryError):
        return "not enough memory to process this image"
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return f"could not be processed ({text[:160]})"
