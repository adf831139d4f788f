"""Configuration of a ``facekit prepare`` run."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..align import AlignConfig
from ..augment import PAPER_ANGLES, AugmentConfig, required_margin
from ..store import StorageOptions

__all__ = ["PrepareConfig", "parse_shard", "parse_pixels", "AUGMENT_MODES", "auto_part_target",
           "DEFAULT_MAX_PIXELS", "MAX_FACE_SIZE"]

AUGMENT_MODES = ("paper", "none")

#: images (and video frames) larger than this many pixels are rejected before they are
#: decoded: 50 megapixels (an 8000x6000 phone photo fits) is ~150 MB decoded RGB, where a
#: 10000x10000 JPEG took 2.2 GB in one worker. ``--max-pixels`` raises it.
DEFAULT_MAX_PIXELS = 50_000_000
#: largest ``face_size`` (aligned face box side, pixels): 110 samples of a 1024-pixel face
#: are 110 MiB per face already
MAX_FACE_SIZE = 1024


def parse_pixels(text: str | int) -> int:
    """``"50M"``, ``"2.5G"``, ``"800k"`` or ``"50000000"`` -> a pixel count (>= 1)."""
    s = str(text).strip().upper().replace("_", "")
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(s[-1:], 1)
    num = s[:-1] if mult > 1 else s
    try:
        value = int(float(num) * mult)
    except ValueError:
        raise ValueError(f"invalid pixel count {text!r}: use e.g. 50M, 120000000 or 1.5G") from None
    if not value >= 1:
        raise ValueError(f"invalid pixel count {text!r}: must be at least 1")
    return value


def auto_part_target(remaining: int) -> int:
    """Frames for the next part when the part size is automatic: an eighth of
    the frames still unplanned, at least 8 and at most 256.

    Guided self-scheduling: the sizes shrink towards the end of a run, so the
    workers finish together (with equal 64-face parts JAFFE's 213 images split
    128/85 over two workers) while the part files stay few (each costs about
    3 ms of HDF5 work): 17 parts for JAFFE's 213 images, 28 for CK+'s 981
    instead of 27 and 32 equal ones. Small last parts also make ``--resume``
    lose little; the cap keeps large datasets to parts of 256 faces. Depends
    only on the data, so every machine of a sharded run agrees.
    """
    return int(min(256, max(8, -(-remaining // 8))))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (0 <= i < n) -> ``(i, n)``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        i_s, n_s = str(text).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise ValueError(f"invalid shard {text!r}: use i/n, e.g. 0/4 for the first of four machines") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"invalid shard {text!r}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


@dataclass
class PrepareConfig:
    """Everything that defines a preparation run.

    Output-defining fields enter :meth:`fingerprint`, which part files carry so
    that ``--resume`` only reuses parts made with the same settings.
    """

    dataset: str
    root: Path
    out: Path
    options: dict[str, Any] = field(default_factory=dict)
    frames: str | None = None            # None: the adapter's default
    augment: str = "paper"               # "paper" (110 samples/face) or "none"
    face_size: int = 112
    patch_size: int = 96
    grayscale: bool = True
    compression: str | None = None
    chunk_samples: int | None = None      # None: one face's samples (110) or about 1 MiB
    part_faces: int | None = None         # faces per part file; None: auto_part_target()
    workers: int | None = None            # None: all CPU cores
    shard: tuple[int, int] | None = None
    resume: bool = False
    force: bool = False
    model: str | None = None
    limit: int | None = None              # first N sequences only
    progress: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are rejected before decoding
    #: store each face's head pose and 52 blendshape scores (faces/pose, faces/blendshapes). The command
    #: line always does: it costs about 4% more CPU time (bench/prepare_pose.py); False is for measuring that
    pose_blendshapes: bool = True

    def __post_init__(self) -> None:
        self.root, self.out = Path(self.root), Path(self.out)
        if self.augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {self.augment!r}")
        if self.compression not in (None, "gzip", "lzf"):
            raise ValueError(f"compression must be none, gzip or lzf, got {self.compression!r}")
        if not 16 <= self.face_size <= MAX_FACE_SIZE:
            raise ValueError(f"face size {self.face_size} is outside 16..{MAX_FACE_SIZE} pixels")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be at least 1, got {self.max_pixels}")
        if self.patch_size > self.face_size:
            raise ValueError(f"patch size {self.patch_size} is larger than the face size {self.face_size}")
        if self.resume and self.force:
            raise ValueError("--resume and --force exclude each other")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")

    @property
    def margin(self) -> int:
        return required_margin(self.face_size, max(abs(a) for a in PAPER_ANGLES))

    @property
    def align_config(self) -> AlignConfig:
        return AlignConfig(size=self.face_size, margin=self.margin, grayscale=self.grayscale)

    @property
    def augment_config(self) -> AugmentConfig | None:
        return AugmentConfig(patch_size=self.patch_size) if self.augment == "paper" else None

    @property
    def storage(self) -> StorageOptions:
        aug = self.augment_config
        chunk = self.chunk_samples or (aug.samples_per_face if aug else None)
        return StorageOptions(chunk_samples=chunk, compression=self.compression)

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def output_settings(self, frames: str, model_sha256: str) -> dict[str, Any]:
        """The settings that determine the output bytes (stored in the file as ``config``)."""
        aug = self.augment_config
        return {
            "dataset": self.dataset, "root": str(self.root.resolve()), "options": self.options,
            "frames": frames, "augment": self.augment,
            "align": self.align_config.to_dict(),
            "augmentation": aug.to_dict() if aug else None,
            "storage": asdict(self.storage), "part_faces": self.part_faces or "auto", "limit": self.limit,
            "model_sha256": model_sha256, "max_pixels": self.max_pixels,
            "pose_blendshapes": self.pose_blendshapes,
        }

    @staticmethod
    def fingerprint(settings: dict[str, Any]) -> str:
        """Stable hash of output settings (the dataset root's location is left out,
        so shards prepared on machines that mount the data elsewhere still match)."""
        s = {k: v for k, v in settings.items() if k != "root"}
        return hashlib.sha256(json.dumps(s, sort_keys=True, default=str).encode()).hexdigest()[:16]
