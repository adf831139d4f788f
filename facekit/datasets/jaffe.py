"""JAFFE (Japanese Female Facial Expression) as distributed.

Layout: one folder of still images named ``XX.EEn.NNN.tiff``::

    root/KA.AN1.39.tiff KA.AN2.40.tiff ... YM.SU3.63.tiff

``XX`` is the subject (two letters), ``EE`` the expression (AN anger, DI disgust,
FE fear, HA happy, NE neutral, SA sadness, SU surprise), ``n`` the repeat number
and ``NNN`` the image number. ``root`` may also be a folder whose single
sub-folder holds the images (the archive extracts to ``jaffe/``). Any image
extension is accepted in place of ``.tiff``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from ..errors import LayoutError
from . import register_dataset
from ._base import DatasetAdapter, Frame, ScanResult, Sequence, Skipped
from ._common import child_dirs, child_files, descend_once, describe_contents, is_image_file, \
    require_dir, sort_sequences

__all__ = ["JAFFE", "JAFFE_LABELS", "JAFFE_CODES"]

JAFFE_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprise")
#: expression code in the file name -> label
JAFFE_CODES: dict[str, str] = {
    "AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sadness",
    "SU": "surprise",
}

# XX.EEn.NNN.ext; the expression code is checked separately to give a precise reason
_NAME = re.compile(r"^(?P<subject>[A-Za-z]{2})\.(?P<code>[A-Za-z]{2})(?P<repeat>\d+)\.(?P<number>\d+)$")
_EXPECTED = "image files named XX.EEn.NNN.tiff (e.g. KA.AN1.39.tiff)"


def _matches(path: Path) -> re.Match[str] | None:
    return _NAME.match(path.stem) if is_image_file(path) else None


def _has_jaffe_files(folder: Path) -> bool:
    return any(_matches(f) for f in child_files(folder))


@register_dataset
class JAFFE(DatasetAdapter):
    """JAFFE: a folder of ``XX.EEn.NNN.tiff`` still images.

    Labels (in this order): anger, disgust, fear, happy, neutral, sadness,
    surprise. Each image is a one-frame sequence named after the file without
    extension (``KA.AN1.39``), subject ``KA``; default frame selection ``all``.
    Files whose names do not follow the pattern, unknown expression codes,
    non-image files and sub-folders are reported as skipped.
    """

    name = "jaffe"
    description = "JAFFE: XX.EEn.NNN.tiff still images (7 expressions incl. neutral)"
    default_frames = "all"
    options: ClassVar[dict[str, Any]] = {}

    def scan(self, root: Path) -> ScanResult:
        root = require_dir(root, self.name, _EXPECTED)
        base = descend_once(root, _has_jaffe_files)
        if base is None:
            raise LayoutError(root, f"no XX.EEn.NNN image files; {self.name} expects {_EXPECTED}; "
                                    f"{describe_contents(root)}")
        sequences: list[Sequence] = []
        skipped: list[Skipped] = [Skipped(str(d), "sub-folder (not scanned)") for d in child_dirs(base)]
        for path in child_files(base):
            seq, why = self._image(path)
            if seq is not None:
                sequences.append(seq)
            else:
                skipped.append(why)
        return ScanResult(labels=JAFFE_LABELS, sequences=sort_sequences(sequences), skipped=skipped)

    @staticmethod
    def _image(path: Path) -> tuple[Sequence | None, Skipped | None]:
        if not is_image_file(path):
            return None, Skipped(str(path), "not an image file")
        m = _NAME.match(path.stem)
        if m is None:
            return None, Skipped(str(path), "file name does not match XX.EEn.NNN (e.g. KA.AN1.39.tiff)")
        code = m["code"].upper()
        if code not in JAFFE_CODES:
            return None, Skipped(str(path), f"unknown expression code {code!r} "
                                            f"(expected one of {' '.join(JAFFE_CODES)})")
        frame = Frame(path=str(path), index=0)
        return Sequence(subject=m["subject"].upper(), name=path.stem, label=JAFFE_CODES[code],
                        frames=(frame,)), None
