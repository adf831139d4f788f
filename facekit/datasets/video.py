"""Generic folder of video clips: one sub-folder per label.

Layout::

    root/
      happy/S001-talk.avi  S002-interview.mp4 ...
      surprise/...

Each clip is one sequence of ``Frame(path=clip, index=i, video=True)``, as the
MMI adapter gives them (``prepare`` decodes the selected frames sequentially);
the frame count is the container's (counted by decoding when it gives none), so
that scanning stays fast. A container that claims more frames than the clip
holds costs the missing frames: ``prepare`` rejects them with the reason. Clips are recognised by
content (:func:`facekit.media.media_kind`), not by extension. Labels are the
sub-folder names exactly as spelled, sorted.

The default frame selection is ``middle:3``: the three frames around the middle
of each clip. Clips recorded neutral -> apex -> neutral (MMI-style, acted
expressions, most talking-face clips) hold the expression there; for clips that
end on the apex (CK+-style onset -> apex) use ``--frames last:3``, for every
frame ``--frames all``.

Options:

``subject_regex``
    applied (``re.search``) to each clip's file name, extension included; the
    first group, or the whole match when the pattern has no group, is the
    subject (``'^(S\\d+)-'`` gives ``S001`` for ``S001-talk.avi``). Clips whose
    name does not match are skipped. Without it every clip is its own subject,
    so subject-disjoint splits degrade to clip-disjoint ones: give it whenever
    several clips show the same person.

Sequences are named ``<label>/<clip file name without extension>``. Reported as
skipped: files outside a label folder, nested folders, files that are not
videos (images included: use the ``folder`` adapter for stills), clips that
cannot be opened or hold no decodable frame, and clips whose names do not match
``subject_regex``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..errors import ImageReadError
from ..imageio import video_frame_count
from ..media import quiet_video_logs
from . import register_dataset
from ._base import DatasetAdapter, Frame, ScanResult, Sequence, Skipped
from ._common import compile_option, label_folder_entries, media_file_kind, pattern_key, scan_label_folders

__all__ = ["VideoFolder", "clip_frame_count"]

_EXPECTED = "<label>/<video clips> sub-folders, one per label"


def clip_frame_count(path: str | Path) -> int:
    """Frames of the clip at ``path``: the container's count, as the MMI adapter
    reads it (:func:`facekit.imageio.video_frame_count`); counted by decoding when
    the container gives none.

    Raises:
        ImageReadError: the clip cannot be opened or holds no decodable frame.
    """
    with quiet_video_logs():
        return video_frame_count(path)


@register_dataset
class VideoFolder(DatasetAdapter):
    """Generic ``root/<label>/<video clip>`` tree (labels = sorted sub-folder names).

    Option ``subject_regex`` (see the module docstring); default frame selection
    ``middle:3``. Each clip is a sequence of its decoded frames.
    """

    name = "video"
    description = "generic root/<label>/<video clips> tree (middle 3 frames); option subject_regex"
    default_frames = "middle:3"
    options: ClassVar[dict[str, Any]] = {"subject_regex": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._subject_re = compile_option(self.name, "subject_regex", self.config["subject_regex"])

    def scan(self, root: Path) -> ScanResult:
        return scan_label_folders(root, self.name, _EXPECTED, self._label_folder)

    def _label_folder(self, label_dir: Path) -> tuple[list[Sequence], list[Skipped]]:
        sequences: list[Sequence] = []
        files, skipped = label_folder_entries(label_dir)
        for clip in files:
            kind = media_file_kind(clip)
            if kind != "video":
                skipped.append(Skipped(str(clip), "an image, not a video clip (use the folder adapter for stills)"
                                       if kind == "image" else "not a video file"))
                continue
            subject = clip.stem
            if self._subject_re is not None:
                key = pattern_key(self._subject_re, clip.name)
                if key is None:
                    skipped.append(Skipped(str(clip), f"file name does not match subject_regex "
                                                      f"'{self._subject_re.pattern}'"))
                    continue
                subject = key
            try:
                n = clip_frame_count(clip)
            except ImageReadError as exc:
                skipped.append(Skipped(str(clip), exc.reason))
                continue
            frames = tuple(Frame(path=str(clip), index=i, video=True) for i in range(n))
            sequences.append(Sequence(subject=subject, name=f"{label_dir.name}/{clip.stem}", label=label_dir.name,
                                      frames=frames))
        if not sequences and not skipped:
            skipped.append(Skipped(str(label_dir), "no video clips in label folder"))
        return sequences, skipped
