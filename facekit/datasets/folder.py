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

Images are recognised by their content, not their names
(:func:`facekit.media.media_kind`): a GIF, a PNG saved without extension
(``scan0042``) or a JPEG named ``.dat`` are images; a file with an image
extension that is not recognised (empty, truncated, unreadable) is kept too, so
that ``prepare`` rejects it with the decoder's reason. Video clips are skipped
with a reason pointing at the ``video`` adapter (a clip is a sequence of many
frames with its own frame selection, ``middle:3`` by default: put clips in a
tree of their own and use ``facekit prepare video``). Everything else ("not an
image file") is skipped and counted.

Sequences are named ``<label>/<key>``, the key being the file name without
extension when there is no ``sequence_regex`` (with the extension when two files
of a label folder share a stem, ``S010_a.png`` and ``S010_a.jpg``: they are two
sequences, not two frames of one). A label folder that cannot be read (no
permission) is skipped and reported; its label keeps its place in the label
order.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

from . import register_dataset
from ._base import DatasetAdapter, Frame, ScanResult, Sequence, Skipped, natural_key
from ._common import compile_option, label_folder_entries, media_file_kind, pattern_key, scan_label_folders

__all__ = ["ImageFolder"]

_EXPECTED = "<label>/<image files> sub-folders, one per label"
#: why a video clip in a label folder is skipped
VIDEO_IN_FOLDER = "a video clip, not an image (use the video adapter for clips)"


@register_dataset
class ImageFolder(DatasetAdapter):
    """Generic ``root/<label>/<image file>`` tree (labels = sorted sub-folder names).

    Options ``subject_regex`` and ``sequence_regex`` (see the module docstring);
    default frame selection ``all``. Images are recognised by content. Reported
    as skipped: files outside a label folder, nested folders, video clips,
    files that are not images, and files whose names do not match a given
    regex; sequences whose files yield different subjects; label folders that
    cannot be read.
    """

    name = "folder"
    description = "generic root/<label>/<images> tree; options subject_regex, sequence_regex"
    default_frames = "all"
    options: ClassVar[dict[str, Any]] = {"subject_regex": None, "sequence_regex": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._subject_re = compile_option(self.name, "subject_regex", self.config["subject_regex"])
        self._sequence_re = compile_option(self.name, "sequence_regex", self.config["sequence_regex"])

    def scan(self, root: Path) -> ScanResult:
        return scan_label_folders(root, self.name, _EXPECTED, self._label_folder)

    def _label_folder(self, label_dir: Path) -> tuple[list[Sequence], list[Skipped]]:
        """Sequences of one label folder and what was skipped there."""
        groups: dict[str, list[tuple[Path, str | None]]] = defaultdict(list)
        files, skipped = label_folder_entries(label_dir)
        for entry in files:
            kind = media_file_kind(entry)
            if kind != "image":
                skipped.append(Skipped(str(entry), VIDEO_IN_FOLDER if kind == "video" else "not an image file"))
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
            subject = pattern_key(self._subject_re, path.name)
            if subject is None:
                return ("", None), Skipped(str(path), f"file name does not match subject_regex "
                                                      f"'{self._subject_re.pattern}'")
        seq_key = path.stem
        if self._sequence_re is not None:
            found = pattern_key(self._sequence_re, path.name)
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
