"""MMI Facial Expression Database, as downloaded from its web site.

Layout (one folder per recording session)::

    root/                                  # the download folder
      Sessions/
        1/
          S001-001.avi                     # the recording
          session.xml                      # <session sessionId="1"><subject id="1"/>
                                           #   <track view="0" filename="S001-001.avi">...
          S001-001.xml                     # metadata: <Metatag Name="Emotion" Value="4"/>
          S001-001-oao_aucs.xml            # action-unit annotation (not read)
        2/ ...

``root`` may be the download folder (holding ``Sessions/``), the ``Sessions/``
folder itself, or a folder whose single sub-folder is the download folder.

Per session:

* video: the ``filename`` of a ``<track>`` in ``session.xml`` that exists in the
  folder, else the only ``.avi`` in the folder;
* subject: ``<subject id="...">`` of ``session.xml`` (numeric ids become
  ``S001``), else the ``Sxxx`` prefix of the video name (``S001-001.avi``);
* emotion: the ``Emotion`` metatag, searched in the video's own metadata XML
  (``S001-001.xml``), then in other XML files of the folder (action-unit files
  ``*-oao_aucs.xml`` excluded), then in ``session.xml``. Codes 1..6 are anger, disgust,
  fear, happy, sadness, surprise (as used by public MMI loaders); a textual
  value such as ``Happiness`` is accepted too.

MMI sessions go neutral -> peak -> neutral, so the default frame selection is
``middle:3``.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ImageReadError, LayoutError
from ..imageio import video_frame_count
from . import register_dataset
from ._base import DatasetAdapter, Frame, ScanResult, Sequence, Skipped
from ._common import canonical_label, child_dirs, child_files, descend_once, describe_contents, \
    find_child_dir, require_dir, sort_sequences, unreadable

__all__ = ["MMI", "MMI_LABELS", "read_emotion", "read_session"]

MMI_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise")

_SESSION_XML = "session.xml"
_VIDEO_EXTENSIONS = (".avi",)
_SUBJECT_FROM_VIDEO = re.compile(r"^(S\d+)[-_]", re.IGNORECASE)
_EXPECTED = "Sessions/<n>/ folders each holding a .avi video, session.xml and <video>.xml metadata"
UNLABELLED_REASON = "no emotion label (no Emotion metatag; most MMI sessions carry action units only)"


def _local(tag: str) -> str:
    """Element or attribute name without namespace, lower case."""
    return tag.rsplit("}", 1)[-1].lower()


def _attr(element: ET.Element, name: str) -> str | None:
    """Attribute ``name`` of ``element``, case-insensitively."""
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def read_session(path: Path) -> tuple[str | None, list[str]]:
    """``(subject id or None, track file names)`` from an MMI ``session.xml``.

    Raises:
        ET.ParseError: not well-formed XML.
    """
    tree = ET.parse(path)
    subject = None
    tracks: list[str] = []
    for el in tree.iter():
        tag = _local(el.tag)
        if tag == "subject" and subject is None:
            subject = _attr(el, "id")
        elif tag == "track":
            filename = _attr(el, "filename")
            if filename:
                tracks.append(filename)
    return subject, tracks


def read_emotion(path: Path) -> str | None:
    """Raw value of the ``Emotion`` metatag in an MMI XML file, or ``None``.

    Raises:
        ET.ParseError: not well-formed XML.
    """
    for el in ET.parse(path).iter():
        if _local(el.tag) == "metatag" and (_attr(el, "name") or "").strip().lower() == "emotion":
            return (_attr(el, "value") or "").strip()
    return None


def emotion_label(value: str) -> str:
    """Canonical label for an Emotion metatag value (``"1"``..``"6"`` or a name).

    Raises:
        ValueError: the value is neither a code 1..6 nor one of the six emotions.
    """
    if value.isdigit():
        code = int(value)
        if 1 <= code <= len(MMI_LABELS):
            return MMI_LABELS[code - 1]
        raise ValueError(f"Emotion code {value} is not one of 1..6")
    label = canonical_label(value)
    if label not in MMI_LABELS:
        raise ValueError(f"Emotion value {value!r} is not a code 1..6 or one of {', '.join(MMI_LABELS)}")
    return label


def _normalise_subject(raw: str) -> str:
    raw = raw.strip()
    return f"S{int(raw):03d}" if raw.isdigit() else raw


def _is_sessions_dir(folder: Path) -> bool:
    return any((d / _SESSION_XML).is_file() for d in child_dirs(folder))


def _is_download_dir(folder: Path) -> bool:
    sessions = find_child_dir(folder, "Sessions")
    return sessions is not None or _is_sessions_dir(folder)


@register_dataset
class MMI(DatasetAdapter):
    """MMI: ``Sessions/<n>/`` with ``<video>.avi``, ``session.xml`` and ``<video>.xml``.

    Labels (in this order): anger, disgust, fear, happy, sadness, surprise.
    Each session with an Emotion metatag is one sequence named after its folder
    (``"1"``), whose frames are the video's frames
    (``Frame(path=video, index=i, video=True)``; the count is read from the
    video). Skipped, with a reason: sessions without an Emotion metatag, with an
    unknown emotion value, without ``session.xml``, without a video (image-only
    sessions), with an unreadable video or XML, or without a subject id.
    """

    name = "mmi"
    description = "MMI Facial Expression DB: Sessions/<n>/ with .avi + XML metadata (6 emotions, middle 3 frames)"
    default_frames = "middle:3"
    options: ClassVar[dict[str, Any]] = {}

    def scan(self, root: Path) -> ScanResult:
        root = require_dir(root, self.name, _EXPECTED)
        download = descend_once(root, _is_download_dir)
        if download is None:
            raise LayoutError(root, f"no Sessions/ folder and no session folders with {_SESSION_XML}; "
                                    f"{self.name} expects {_EXPECTED}; {describe_contents(root)}")
        sessions = find_child_dir(download, "Sessions") or download
        sequences: list[Sequence] = []
        skipped: list[Skipped] = []
        for session_dir in child_dirs(sessions):
            try:
                seq, why = self._session(session_dir)
            except OSError as exc:
                seq, why = None, unreadable(session_dir, exc)
            if seq is not None:
                sequences.append(seq)
            else:
                skipped.append(why)
        return ScanResult(labels=MMI_LABELS, sequences=sort_sequences(sequences), skipped=skipped)

    def _session(self, folder: Path) -> tuple[Sequence | None, Skipped | None]:
        """One session folder -> (sequence, None) or (None, why it was skipped)."""
        session_xml = folder / _SESSION_XML
        if not session_xml.is_file():
            return None, Skipped(str(folder), f"no {_SESSION_XML} in session folder")
        try:
            subject, tracks = read_session(session_xml)
        except ET.ParseError as exc:
            return None, Skipped(str(session_xml), f"not well-formed XML ({exc})")
        video = self._video(folder, tracks)
        if video is None:
            return None, Skipped(str(folder), "no single .avi video in session folder "
                                              "(image-only sessions are not supported)")
        try:
            raw = self._emotion_value(folder, video, session_xml)
        except ET.ParseError as exc:
            return None, Skipped(str(folder), f"unreadable metadata XML ({exc})")
        if raw is None:
            return None, Skipped(str(folder), UNLABELLED_REASON)
        value, source = raw
        try:
            label = emotion_label(value)
        except ValueError as exc:
            return None, Skipped(str(source), f"unusable emotion label: {exc}")
        if subject is None or not subject.strip():
            m = _SUBJECT_FROM_VIDEO.match(video.name)
            if m is None:
                return None, Skipped(str(session_xml), "no <subject id> and no Sxxx prefix in the video name")
            subject = m.group(1)
        try:
            n = video_frame_count(video)
        except ImageReadError as exc:
            return None, Skipped(str(video), exc.reason)
        frames = tuple(Frame(path=str(video), index=i, video=True) for i in range(n))
        return Sequence(subject=_normalise_subject(subject), name=folder.name, label=label, frames=frames), None

    @staticmethod
    def _video(folder: Path, tracks: list[str]) -> Path | None:
        for filename in tracks:
            candidate = folder / Path(filename).name
            if candidate.suffix.lower() in _VIDEO_EXTENSIONS and candidate.is_file():
                return candidate
        videos = [f for f in child_files(folder) if f.suffix.lower() in _VIDEO_EXTENSIONS]
        return videos[0] if len(videos) == 1 else None

    @staticmethod
    def _emotion_value(folder: Path, video: Path, session_xml: Path) -> tuple[str, Path] | None:
        """``(raw Emotion value, file it came from)`` or ``None`` when no file has one."""
        xmls = [f for f in child_files(folder) if f.suffix.lower() == ".xml"
                and f.name.lower() != _SESSION_XML and "aucs" not in f.name.lower()]
        xmls.sort(key=lambda f: f.stem != video.stem)  # the video's own metadata first
        for path in [*xmls, session_xml]:
            value = read_emotion(path)
            if value is not None:
                return value, path
        return None
