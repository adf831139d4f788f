"""Generic image folder: one sub-folder per label.

Layout::

    root/
      anger/S010_004_00000017.png S010_004_00000018.png ...
      happy/...
      surprise/...

Labels are the sub-folder names exactly as spelled, sorted (so their order and
the integers stored for them are fixed by the names). Options:

``subject_regex``
    applied (``re.search``) to each file name, extension included; the first
    group, or the whole match when the pattern has no group, is the subject.
    ``'^(S\\d+)_'`` gives ``S010`` for ``S010_004_00000017.png``. Files whose
    name does not match are skipped. Without it every sequence is its own
    subject, so subject-disjoint splits degrade to sequence-disjoint ones: give
    it whenever several files show the same person.
``sequence_regex``
    groups files of one label folder into sequences: files whose names give the
    same key (first group or whole match) form one sequence, frames in natural
    file-name order (``'^(S\\d+_\\d+)_'`` groups the frames of a CK+ sequence).
    Files whose name does not match are skipped. Without it each file is its
    own one-frame sequence.

Sequences are named ``<label>/<key>``, the key being the file name without
extension when there is no ``sequence_regex`` (with the extension when two files
of a label folder share a stem, ``S010_a.png`` and ``S010_a.jpg``: they are two
sequences, not two frames of one). A label folder that cannot be read (no
permission) is skipped and reported; its label keeps its place in the label
order.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

from ..errors import LayoutError
from . import register_dataset
from ._base import DatasetAdapter, Frame, ScanResult, Sequence, Skipped, natural_key
from ._common import child_dirs, child_files, describe_contents, is_clutter, is_image_file, \
    require_dir, sort_sequences, unreadable

__all__ = ["ImageFolder"]

_EXPECTED = "<label>/<image files> sub-folders, one per label"


def _compile(option: str, pattern: Any) -> re.Pattern[str] | None:
    if pattern is None or (isinstance(pattern, str) and not pattern.strip()):
        return None
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"folder option {option}={pattern!r} is not a valid regular expression: {exc}") from None


def _key(pattern: re.Pattern[str], text: str) -> str | None:
    """First group (or whole match) of ``pattern`` searched in ``text``; ``None``
    when it does not match or matches the empty string."""
    m = pattern.search(text)
    if m is None:
        return None
    key = m.group(1) if pattern.groups and m.group(1) is not None else m.group(0)
    return key or None


@register_dataset
class ImageFolder(DatasetAdapter):
    """Generic ``root/<label>/<image file>`` tree (labels = sorted sub-folder names).

    Options ``subject_regex`` and ``sequence_regex`` (see the module docstring);
    default frame selection ``all``. Reported as skipped: files outside a label
    folder, nested folders, non-image files, and files whose names do not match
    a given regex; sequences whose files yield different subjects.
    """

    name = "folder"
    description = "generic root/<label>/<images> tree; options subject_regex, sequence_regex"
    default_frames = "all"
    options: ClassVar[dict[str, Any]] = {"subject_regex": None, "sequence_regex": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._subject_re = _compile("subject_regex", self.config["subject_regex"])
        self._sequence_re = _compile("sequence_regex", self.config["sequence_regex"])

    def scan(self, root: Path) -> ScanResult:
        root = require_dir(root, self.name, _EXPECTED)
        label_dirs = child_dirs(root)
        if not label_dirs:
            raise LayoutError(root, f"no label sub-folders; {self.name} expects {_EXPECTED}; "
                                    f"{describe_contents(root)}")
        labels = tuple(sorted(d.name for d in label_dirs))
        sequences: list[Sequence] = []
        skipped = [Skipped(str(f), "file outside a label folder") for f in child_files(root)]
        for label_dir in label_dirs:
            found, why = self._label_folder(label_dir)
            sequences.extend(found)
            skipped.extend(why)
        return ScanResult(labels=labels, sequences=sort_sequences(sequences), skipped=skipped)

    def _label_folder(self, label_dir: Path) -> tuple[list[Sequence], list[Skipped]]:
        """Sequences of one label folder and what was skipped there."""
        groups: dict[str, list[tuple[Path, str | None]]] = defaultdict(list)
        skipped: list[Skipped] = []
        try:
            entries = sorted(label_dir.iterdir(), key=lambda p: natural_key(p.name))
        except OSError as exc:
            return [], [unreadable(label_dir, exc)]
        for entry in entries:
            if is_clutter(entry):
                continue
            if entry.is_dir():
                skipped.append(Skipped(str(entry), "sub-folder inside a label folder (not scanned)"))
                continue
            if not is_image_file(entry):
                skipped.append(Skipped(str(entry), "not an image file"))
                continue
            keys, why = self._keys(entry)
            if why is not None:
                skipped.append(why)
            else:
                groups[keys[0]].append((entry, keys[1]))
        if not groups and not skipped:
            skipped.append(Skipped(str(label_dir), "no image files in label folder"))
        if self._sequence_re is None:          # one file, one sequence: files sharing a stem stay apart
            for stem in [k for k, members in groups.items() if len(members) > 1]:
                for member in groups.pop(stem):
                    groups[member[0].name].append(member)
        sequences = []
        for seq_key, members in groups.items():
            seq, why = self._sequence(label_dir, seq_key, members)
            if seq is not None:
                sequences.append(seq)
            else:
                skipped.append(why)
        return sequences, skipped

    def _keys(self, path: Path) -> tuple[tuple[str, str | None], Skipped | None]:
        """``((sequence key, subject or None), None)`` or (unused, why skipped)."""
        subject = None
        if self._subject_re is not None:
            subject = _key(self._subject_re, path.name)
            if subject is None:
                return ("", None), Skipped(str(path), f"file name does not match subject_regex "
                                                      f"'{self._subject_re.pattern}'")
        seq_key = path.stem
        if self._sequence_re is not None:
            found = _key(self._sequence_re, path.name)
            if found is None:
                return ("", None), Skipped(str(path), f"file name does not match sequence_regex "
                                                      f"'{self._sequence_re.pattern}'")
            seq_key = found
        return (seq_key, subject), None

    @staticmethod
    def _sequence(label_dir: Path, seq_key: str, members: list[tuple[Path, str | None]]
                  ) -> tuple[Sequence | None, Skipped | None]:
        subjects = sorted({s for _, s in members if s is not None})
        if len(subjects) > 1:
            return None, Skipped(str(label_dir / seq_key), "files of one sequence give different subjects "
                                                           f"({', '.join(subjects)})")
        frames = tuple(Frame(path=str(p), index=i)
                       for i, (p, _) in enumerate(sorted(members, key=lambda m: natural_key(m[0].name))))
        subject = subjects[0] if subjects else seq_key
        return Sequence(subject=subject, name=f"{label_dir.name}/{seq_key}", label=label_dir.name,
                        frames=frames), None
