"""Oulu-CASIA NIR&VIS facial expression database as released.

Layout::

    root/                         # the release folder, holding an image set
      OriginalImg/                # image set (a cropped set may sit beside it)
        VL/                       # modality: VL visible light, NI near-infrared
          Strong/                 # illumination: Strong, Weak or Dark
            P001/                 # subject
              Anger/000.jpeg 001.jpeg ...   # one sequence, neutral -> peak
              Disgust/ Fear/ Happiness/ Sadness/ Surprise/

``root`` may be any level of this tree: the release folder, the image-set folder
(``OriginalImg/``), the modality folder (``VL/``), or the illumination folder
that holds the ``Pxxx`` subjects directly (then the options are not used).
When the release folder holds several image sets, ``OriginalImg`` is used.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from ..errors import LayoutError
from . import register_dataset
from ._base import DatasetAdapter, ScanResult, Sequence, Skipped
from ._common import canonical_label, child_dirs, collect_frames, describe_contents, \
    find_child_dir, listed, require_dir, scan_subject_folders

__all__ = ["OuluCasia", "OULU_LABELS"]

OULU_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise")

_MODALITIES = {"vl": "VL", "vis": "VL", "ni": "NI", "nir": "NI"}
_ILLUMINATIONS = {"strong": "Strong", "weak": "Weak", "dark": "Dark"}
_SUBJECT = re.compile(r"^P\d+$", re.IGNORECASE)
_EXPRESSION_FOLDERS = "Anger, Disgust, Fear, Happiness, Sadness, Surprise"
_EXPECTED = "OriginalImg/<VL|NI>/<Strong|Weak|Dark>/Pxxx/<Expression>/NNN.jpeg (or any level of it)"


def _has_subjects(folder: Path) -> bool:
    return any(_SUBJECT.match(d.name) for d in child_dirs(folder))


def _has_modalities(folder: Path) -> bool:
    return find_child_dir(folder, "VL", "NI") is not None


def _has_illuminations(folder: Path) -> bool:
    return find_child_dir(folder, *_ILLUMINATIONS.values()) is not None


@register_dataset
class OuluCasia(DatasetAdapter):
    """Oulu-CASIA: ``OriginalImg/<modality>/<illumination>/Pxxx/<Expression>/*.jpeg``.

    Options: ``modality`` (``VL`` visible light, default; ``NI`` near-infrared)
    and ``illumination`` (``Strong`` default, ``Weak``, ``Dark``), both
    case-insensitive. Labels (in this order): anger, disgust, fear, happy,
    sadness, surprise (folders ``Happiness``/``Sadness`` map to happy/sadness).
    Each ``Pxxx/<Expression>`` folder is one sequence named ``Pxxx/<Expression>``,
    neutral to peak, so the default frame selection is ``last:3``.
    Unknown expression folders, non-subject folders and non-image files are
    reported as skipped.
    """

    name = "oulu-casia"
    description = "Oulu-CASIA NIR&VIS: OriginalImg/VL/Strong/Pxxx/<Expression>/ (6 emotions, last 3 frames)"
    default_frames = "last:3"
    options: ClassVar[dict[str, Any]] = {"modality": "VL", "illumination": "Strong"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        modality = str(self.config["modality"]).strip().lower()
        illumination = str(self.config["illumination"]).strip().lower()
        if modality not in _MODALITIES:
            raise ValueError(f"oulu-casia option modality={self.config['modality']!r}: use VL or NI")
        if illumination not in _ILLUMINATIONS:
            raise ValueError(f"oulu-casia option illumination={self.config['illumination']!r}: "
                             "use Strong, Weak or Dark")
        self.config["modality"] = _MODALITIES[modality]
        self.config["illumination"] = _ILLUMINATIONS[illumination]

    def scan(self, root: Path) -> ScanResult:
        root = require_dir(root, self.name, _EXPECTED)
        subjects_dir = self._subjects_dir(root)
        sequences, skipped = scan_subject_folders(subjects_dir, _SUBJECT, "Pxxx", self._sequence)
        return ScanResult(labels=OULU_LABELS, sequences=sequences, skipped=skipped)

    def _subjects_dir(self, root: Path) -> Path:
        """The folder holding the ``Pxxx`` subjects for the configured options."""
        if _has_subjects(root):
            return root
        modality, illumination = self.config["modality"], self.config["illumination"]
        if _has_illuminations(root):  # root is a modality folder
            named = _MODALITIES.get(root.name.lower())
            if named is not None and named != modality:
                raise LayoutError(root, f"is the {root.name}/ modality folder but modality={modality}; "
                                        f"point oulu-casia at the folder above it or pass modality={named}")
            return self._pick(root, illumination, "illumination")
        set_dir = self._image_set(root)
        return self._pick(self._pick(set_dir, modality, "modality"), illumination, "illumination")

    def _image_set(self, root: Path) -> Path:
        """The image-set folder (holding ``VL/`` and ``NI/``) at or below ``root``."""
        if _has_modalities(root):
            return root
        sets = [d for d in child_dirs(root) if _has_modalities(d)]
        if not sets:
            raise LayoutError(root, f"no OriginalImg/, VL/, NI/ or Pxxx folders; {self.name} expects "
                                    f"{_EXPECTED}; {describe_contents(root)}")
        if len(sets) == 1:
            return sets[0]
        original = [d for d in sets if d.name.lower() == "originalimg"]
        if original:
            return original[0]
        names = ", ".join(d.name + "/" for d in sets)
        raise LayoutError(root, f"holds several image sets ({names}); point {self.name} at one of them")

    @staticmethod
    def _pick(folder: Path, wanted: str, option: str) -> Path:
        found = find_child_dir(folder, wanted)
        if found is None:
            raise LayoutError(folder, f"no {wanted}/ folder (oulu-casia option {option}={wanted}); "
                                      f"{describe_contents(folder)}")
        return found

    @staticmethod
    def _sequence(subject: str, expr_dir: Path) -> tuple[Sequence | None, list[Skipped]]:
        label = canonical_label(expr_dir.name)
        if label not in OULU_LABELS:
            return None, [Skipped(str(expr_dir), f"unknown expression folder (expected {_EXPRESSION_FOLDERS})")]
        frames, skipped = collect_frames(expr_dir)
        if not frames:
            return None, skipped + ([Skipped(str(expr_dir), "no image files in expression folder")]
                                    if listed(skipped, expr_dir) else [])
        return Sequence(subject=subject, name=f"{subject}/{expr_dir.name}", label=label, frames=frames), skipped
