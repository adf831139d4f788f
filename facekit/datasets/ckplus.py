"""CK+ (Extended Cohn-Kanade) as released.

Layout (``root`` is the folder holding both sub-folders)::

    root/
      cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
      Emotion/S005/001/S005_001_00000011_emotion.txt      # "   3.0000000e+00"

``Emotion_labels/`` (with or without an ``Emotion/`` inside) is accepted in place
of ``Emotion/``; folder names are matched case-insensitively. ``root`` may also
be a folder whose single sub-folder holds the two (``CK+/`` after unzipping into
it). Other folders of the release (``FACS/``, ``Landmarks/``) are not read.

Each ``Sxxx/yyy`` image folder is one sequence (subject ``Sxxx``, name
``Sxxx/yyy``), going from neutral to the peak expression, so the default frame
selection is ``last:3``: 327 labelled sequences x 3 = the 981 faces of the usual
CK+ protocol.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar

from ..errors import LayoutError
from . import register_dataset
from ._base import DatasetAdapter, ScanResult, Sequence, Skipped
from ._common import child_dirs, child_files, collect_frames, descend_once, find_child_dir, listed, \
    require_dir, sort_sequences, unreadable

__all__ = ["CKPlus", "CKPLUS_LABELS", "parse_emotion_file"]

#: label order (CK+ codes 1..7; code 0 "neutral" is never used as a label)
CKPLUS_LABELS: tuple[str, ...] = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")

_IMAGES = "cohn-kanade-images"
_EMOTION_NAMES = ("Emotion", "Emotion_labels")
_SUBJECT = re.compile(r"^S\d+$", re.IGNORECASE)
_EXPECTED = (f"{_IMAGES}/Sxxx/yyy/Sxxx_yyy_0000000N.png and "
             "Emotion/Sxxx/yyy/Sxxx_yyy_0000000N_emotion.txt under the given folder")
UNLABELLED_REASON = "no emotion label (CK+ labels only 327 of 593 sequences)"


def parse_emotion_file(path: Path) -> str:
    """The label written in a CK+ ``*_emotion.txt`` file.

    The file holds one number, e.g. ``"   3.0000000e+00"`` (code 3 = disgust).

    Raises:
        ValueError: the file is empty, not one number, not a finite whole
            number (``inf``, ``nan``, ``1e400``), or the code is outside 1..7;
            the message says which.
    """
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not text:
        raise ValueError("emotion file is empty")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"emotion file does not hold one number (found {text[:40]!r})") from None
    if not math.isfinite(value):
        raise ValueError(f"emotion code {text[:40]} is not a finite number, not one of 1..7")
    if value != int(value) or not 1 <= int(value) <= len(CKPLUS_LABELS):
        raise ValueError(f"emotion code {text} is not one of 1..7")
    return CKPLUS_LABELS[int(value) - 1]


def _has_images_dir(folder: Path) -> bool:
    return find_child_dir(folder, _IMAGES) is not None


def _emotion_dir(base: Path) -> Path | None:
    found = find_child_dir(base, *_EMOTION_NAMES)
    if found is not None and found.name.lower() == "emotion_labels":
        return find_child_dir(found, "Emotion") or found
    return found


@register_dataset
class CKPlus(DatasetAdapter):
    """CK+: ``cohn-kanade-images/Sxxx/yyy/*.png`` + ``Emotion/Sxxx/yyy/*_emotion.txt``.

    Labels (in this order): anger, contempt, disgust, fear, happy, sadness,
    surprise. Sequences without an emotion file are skipped (CK+ labels 327 of
    its 593 sequences); an unreadable emotion file (empty, not a number, code not
    in 1..7, several files) skips its sequence with a reason naming the file.
    Non-image files in a sequence folder are reported as skipped; hidden files
    such as ``.DS_Store`` are ignored silently.
    """

    name = "ck+"
    description = "CK+ as released: cohn-kanade-images/ + Emotion/ (7 emotions, last 3 frames)"
    default_frames = "last:3"
    options: ClassVar[dict[str, Any]] = {}

    def scan(self, root: Path) -> ScanResult:
        root = require_dir(root, self.name, _EXPECTED)
        base = descend_once(root, _has_images_dir)
        if base is None:
            if any(_SUBJECT.match(d.name) for d in child_dirs(root)):
                raise LayoutError(root, f"holds Sxxx folders but no {_IMAGES}/ folder; point ck+ at the "
                                        f"folder that contains both {_IMAGES}/ and Emotion/")
            raise LayoutError(root, f"no {_IMAGES}/ folder; {self.name} expects {_EXPECTED}")
        images = find_child_dir(base, _IMAGES)
        emotions = _emotion_dir(base)
        if emotions is None:
            raise LayoutError(base, f"has {images.name}/ but no Emotion/ folder with the labels "
                                    "(unzip Emotion_labels.zip next to it)")
        sequences: list[Sequence] = []
        skipped: list[Skipped] = []
        for subject_dir in child_dirs(images):
            if not _SUBJECT.match(subject_dir.name):
                skipped.append(Skipped(str(subject_dir), "not a subject folder (expected Sxxx)"))
                continue
            try:
                seq_dirs, files = child_dirs(subject_dir), child_files(subject_dir)
            except OSError as exc:
                skipped.append(unreadable(subject_dir, exc))
                continue
            for seq_dir in seq_dirs:
                try:
                    seq, why = self._sequence(subject_dir.name, seq_dir, emotions)
                except OSError as exc:            # its emotion folder cannot be read
                    seq, why = None, [Skipped(str(seq_dir), f"its emotion folder {unreadable(seq_dir, exc).reason}")]
                skipped.extend(why)
                if seq is not None:
                    sequences.append(seq)
            skipped.extend(Skipped(str(f), "file outside a sequence folder") for f in files)
        skipped.extend(self._orphan_labels(images, emotions))
        return ScanResult(labels=CKPLUS_LABELS, sequences=sort_sequences(sequences), skipped=skipped)

    def _sequence(self, subject: str, seq_dir: Path, emotions: Path
                  ) -> tuple[Sequence | None, list[Skipped]]:
        """One sequence folder -> (sequence or None, what was skipped)."""
        frames, skipped = collect_frames(seq_dir)
        if not frames:
            return None, skipped + ([Skipped(str(seq_dir), "no image files in sequence folder")]
                                    if listed(skipped, seq_dir) else [])
        label_dir = emotions / subject / seq_dir.name
        label_files = ([f for f in child_files(label_dir) if f.name.lower().endswith("_emotion.txt")]
                       if label_dir.is_dir() else [])
        if not label_files:
            return None, skipped + [Skipped(str(seq_dir), UNLABELLED_REASON)]
        if len(label_files) > 1:
            names = ", ".join(f.name for f in label_files)
            return None, skipped + [Skipped(str(label_dir), f"several emotion files ({names})")]
        label_file = label_files[0]
        try:
            label = parse_emotion_file(label_file)
        except (ValueError, OSError) as exc:
            return None, skipped + [Skipped(str(label_file), f"unusable emotion file {label_file.name}: {exc}")]
        seq = Sequence(subject=subject, name=f"{subject}/{seq_dir.name}", label=label, frames=frames)
        return seq, skipped

    @staticmethod
    def _orphan_labels(images: Path, emotions: Path) -> list[Skipped]:
        """Emotion folders whose image folder is missing."""
        out = []
        for subject_dir in child_dirs(emotions):
            try:
                for seq_dir in child_dirs(subject_dir):
                    if not (images / subject_dir.name / seq_dir.name).is_dir():
                        out.append(Skipped(str(seq_dir), "emotion label without an image folder"))
            except OSError as exc:
                out.append(unreadable(subject_dir, exc))
        return out
