"""BU-4DFE (Binghamton University 3D dynamic facial expression database), 2D texture frames.

Layout::

    root/
      F001/                      # subjects F001-F058 (female), M001-M043 (male)
        Angry/000.jpg 000.wrl 001.jpg 001.wrl ...   # texture frame + 3D mesh per time step
        Disgust/ Fear/ Happy/ Sad/ Surprise/
      M001/ ...

Only the 2D texture images are listed; the ``.wrl`` meshes (and ``.bnd``
landmark files of the landmark release) beside them are passed over silently.
Folders that are not subjects (e.g. the ``BU_WrlViewer_V2/`` viewer shipped with
the data) are reported as skipped. ``root`` may also be a folder whose single
sub-folder holds the subjects.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from ..errors import LayoutError
from . import register_dataset
from ._base import DatasetAdapter, ScanResult, Sequence, Skipped
from ._common import canonical_label, child_dirs, collect_frames, descend_once, \
    describe_contents, listed, require_dir, scan_subject_folders

__all__ = ["BU4DFE", "BU4DFE_LABELS"]

BU4DFE_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise")

_SUBJECT = re.compile(r"^[FM]\d{3}$", re.IGNORECASE)
_COMPANIONS = (".wrl", ".bnd")
_EXPECTED = "Fxxx|Mxxx/<Angry|Disgust|Fear|Happy|Sad|Surprise>/NNN.jpg subject folders"


def _has_subjects(folder: Path) -> bool:
    return any(_SUBJECT.match(d.name) for d in child_dirs(folder))


@register_dataset
class BU4DFE(DatasetAdapter):
    """BU-4DFE 2D texture frames: ``Fxxx|Mxxx/<Expression>/NNN.jpg``.

    Labels (in this order): anger, disgust, fear, happy, sadness, surprise
    (folders Angry, Disgust, Fear, Happy, Sad, Surprise). Each
    ``<subject>/<Expression>`` folder is one sequence named ``F001/Angry``. The
    default frame selection is ``all`` (every frame, for identity pretraining).
    Unknown expression folders and non-image files other than the ``.wrl``/``.bnd``
    companions are reported as skipped.
    """

    name = "bu-4dfe"
    description = "BU-4DFE 2D texture frames: Fxxx|Mxxx/<Expression>/NNN.jpg (6 emotions, all frames)"
    default_frames = "all"
    options: ClassVar[dict[str, Any]] = {}

    def scan(self, root: Path) -> ScanResult:
        root = require_dir(root, self.name, _EXPECTED)
        base = descend_once(root, _has_subjects)
        if base is None:
            raise LayoutError(root, f"no F001-style or M001-style subject folders; {self.name} expects "
                                    f"{_EXPECTED}; {describe_contents(root)}")
        sequences, skipped = scan_subject_folders(base, _SUBJECT, "Fxxx or Mxxx", self._sequence)
        return ScanResult(labels=BU4DFE_LABELS, sequences=sequences, skipped=skipped)

    @staticmethod
    def _sequence(subject: str, expr_dir: Path) -> tuple[Sequence | None, list[Skipped]]:
        label = canonical_label(expr_dir.name)
        if label not in BU4DFE_LABELS:
            return None, [Skipped(str(expr_dir), "unknown expression folder "
                                                 "(expected Angry, Disgust, Fear, Happy, Sad, Surprise)")]
        frames, skipped = collect_frames(expr_dir, companions=_COMPANIONS)
        if not frames:
            return None, skipped + ([Skipped(str(expr_dir), "no image files in expression folder")]
                                    if listed(skipped, expr_dir) else [])
        return Sequence(subject=subject, name=f"{subject}/{expr_dir.name}", label=label, frames=frames), skipped
