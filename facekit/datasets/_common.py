"""Small helpers shared by the built-in dataset adapters (private).

Everything here works on folder listings and file headers: no pixels are
decoded. The adapters use these helpers to

* recognise image files by extension (frame folders of known datasets) or by
  content (:func:`media_file_kind`: the generic ``folder`` and ``video``
  adapters) and ignore operating-system clutter (``.DS_Store``, ``Thumbs.db``,
  ``__MACOSX/`` ...),
* scan a ``ROOT/<label>/<files>`` tree (:func:`scan_label_folders`) and compile
  the adapters' name patterns (:func:`compile_option`, :func:`pattern_key`),
* list the frames of a frame folder in natural order, reporting every other
  file as :class:`~facekit.datasets.Skipped` ("not an image file"),
* map the many spellings of expression names (``Angry``, ``Happiness``,
  ``Sad``...) to facekit's canonical lower-case label names,
* find a child folder case-insensitively, and accept a root that holds the
  expected layout one level down (the folder a zip file extracts to),
* report folders and files that cannot be read (no permission) as skipped
  (:func:`unreadable`) instead of stopping the scan,
* leave out the output of the ``prepare`` run that is scanning
  (:func:`excluding_output`): ``OUT`` and its ``OUT.parts/``, ``OUT.lock`` and
  temporaries may lie inside the dataset folder and are never input.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import LayoutError
from ._base import Frame, ScanResult, Sequence, Skipped, natural_key

__all__ = [
    "IMAGE_EXTENSIONS", "is_image_file", "is_clutter", "child_dirs", "child_files",
    "find_child_dir", "require_dir", "descend_once", "collect_frames", "canonical_label",
    "sort_sequences", "describe_contents", "unreadable", "excluding_output", "is_output", "media_file_kind",
    "scan_label_folders", "label_folder_entries", "compile_option", "pattern_key",
]

#: extensions (lower case, with dot) of the still-image formats OpenCV decodes
IMAGE_EXTENSIONS: frozenset[str] = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".jp2",
})

#: file and folder names that operating systems and archivers leave behind
_CLUTTER_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "ehthumbs.db"})

#: spelling of expression names in released datasets -> canonical label
_LABEL_ALIASES: dict[str, str] = {
    "anger": "anger", "angry": "anger", "an": "anger",
    "contempt": "contempt", "co": "contempt",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "fe": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "ha": "happy",
    "neutral": "neutral", "ne": "neutral",
    "sad": "sadness", "sadness": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
}


def is_image_file(path: Path) -> bool:
    """True when ``path`` has an image extension (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def media_file_kind(path: Path) -> str | None:
    """``"image"``, ``"video"`` or ``None`` for a file, by content
    (:func:`facekit.media.media_kind`: a GIF, a PNG without extension, an AVI named
    ``.dat``). A file that is not recognised but carries an image extension also
    counts as an image (empty, truncated, unreadable, a pipe named ``x.png``): the
    decoder then rejects it with the precise reason instead of the scan passing over it."""
    from ..media import media_kind
    kind = media_kind(path)
    if kind is None and is_image_file(path):
        return "image"
    return kind


def compile_option(dataset: str, option: str, pattern: Any) -> re.Pattern[str] | None:
    """An adapter's regular-expression option, compiled; ``None`` for none or blank.

    Raises:
        ValueError: naming the dataset, the option and the regex error.
    """
    if pattern is None or (isinstance(pattern, str) and not pattern.strip()):
        return None
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"{dataset} option {option}={pattern!r} is not a valid regular expression: {exc}") \
            from None


def pattern_key(pattern: re.Pattern[str], text: str) -> str | None:
    """First group (or the whole match when the pattern has no group) of ``pattern``
    searched in ``text``; ``None`` when it does not match or matches the empty string."""
    m = pattern.search(text)
    if m is None:
        return None
    key = m.group(1) if pattern.groups and m.group(1) is not None else m.group(0)
    return key or None


#: (absolute folder, file name) of the output of the prepare run that is scanning
_OUTPUT: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("facekit_output", default=None)


@contextlib.contextmanager
def excluding_output(out: str | os.PathLike) -> Iterator[None]:
    """While the block runs, :func:`is_clutter` is true for ``out`` and everything named
    ``out.*`` beside it (its ``.parts`` folder, lock and temporary files), so a scan of a
    folder that contains the output does not take it for input."""
    out = Path(out)
    token = _OUTPUT.set((os.path.abspath(out.parent), out.name))
    try:
        yield
    finally:
        _OUTPUT.reset(token)


def is_output(path: Path) -> bool:
    """True for the output of the running prepare (see :func:`excluding_output`)."""
    out = _OUTPUT.get()
    if out is None:
        return False
    name = path.name
    return (name == out[1] or name.startswith(out[1] + ".")) and os.path.abspath(path.parent) == out[0]


def is_clutter(path: Path) -> bool:
    """True for hidden entries (``.DS_Store``, ``._x.png``), OS/archiver clutter and the
    running prepare's own output (:func:`excluding_output`)."""
    return path.name.startswith(".") or path.name.lower() in _CLUTTER_NAMES or is_output(path)


def unreadable(path: Path | str, exc: OSError) -> Skipped:
    """The skip entry for a folder or file that cannot be read (e.g. no permission)."""
    return Skipped(str(path), f"cannot be read ({exc.strerror or exc})")


def child_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` in natural order, clutter excluded."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not is_clutter(p)),
                  key=lambda p: natural_key(p.name))


def child_files(folder: Path) -> list[Path]:
    """Files directly in ``folder`` in natural order, clutter excluded."""
    return sorted((p for p in folder.iterdir() if not p.is_dir() and not is_clutter(p)),
                  key=lambda p: natural_key(p.name))


def label_folder_entries(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """The files of a label folder in natural order (clutter excluded), and a skip entry
    for each sub-folder ("not scanned").

    Raises:
        OSError: the folder cannot be listed.
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if is_clutter(entry):
            continue
        if entry.is_dir():
            skipped.append(Skipped(str(entry), "sub-folder inside a label folder (not scanned)"))
        else:
            files.append(entry)
    return files, skipped


LabelFolderScan = Callable[[Path], "tuple[list[Sequence], list[Skipped]]"]


def scan_label_folders(root: Path, dataset: str, expected: str, label_folder: LabelFolderScan) -> ScanResult:
    """Scan a ``ROOT/<label>/...`` tree: labels are the sub-folder names, sorted;
    ``label_folder(folder)`` turns one label folder into sequences and skips. A label
    folder that cannot be listed is skipped and counted (``label_folder`` gets no
    chance); its label keeps its place. Files directly in ``root`` are skipped.

    Raises:
        LayoutError: ``root`` is missing, a file, unreadable or has no sub-folders
            (``dataset`` and ``expected`` go into the message).
    """
    root = require_dir(root, dataset, expected)
    label_dirs = child_dirs(root)
    if not label_dirs:
        raise LayoutError(root, f"no label sub-folders; {dataset} expects {expected}; {describe_contents(root)}")
    sequences: list[Sequence] = []
    skipped = [Skipped(str(f), "file outside a label folder") for f in child_files(root)]
    for folder in label_dirs:
        try:
            found, why = label_folder(folder)
        except OSError as exc:
            found, why = [], [unreadable(folder, exc)]
        sequences.extend(found)
        skipped.extend(why)
    return ScanResult(labels=tuple(sorted(d.name for d in label_dirs)), sequences=sort_sequences(sequences),
                      skipped=skipped)


def find_child_dir(folder: Path, *names: str) -> Path | None:
    """The first sub-folder of ``folder`` whose name equals one of ``names``
    (case-insensitive, tried in the order given), or ``None``."""
    by_lower = {p.name.lower(): p for p in child_dirs(folder)}
    for name in names:
        hit = by_lower.get(name.lower())
        if hit is not None:
            return hit
    return None


def describe_contents(folder: Path, limit: int = 6) -> str:
    """Short listing for error messages: ``"found: a/, b/, c.txt, ... (12 entries)"``."""
    try:
        entries = sorted((p for p in folder.iterdir() if not is_clutter(p)),
                         key=lambda p: natural_key(p.name))
    except OSError as exc:  # unreadable folder
        return f"cannot list it ({exc.strerror or exc})"
    if not entries:
        return "it is empty"
    shown = [p.name + ("/" if p.is_dir() else "") for p in entries[:limit]]
    more = f", ... ({len(entries)} entries)" if len(entries) > limit else ""
    return "found: " + ", ".join(shown) + more


def require_dir(root: Path, dataset: str, expected: str) -> Path:
    """``root`` as a :class:`Path` if it is an existing folder.

    Raises:
        LayoutError: naming ``root``, saying what is wrong and what ``dataset``
            expects (``expected``).
    """
    root = Path(root)
    if not root.exists():
        raise LayoutError(root, f"folder does not exist; {dataset} expects {expected}")
    if not root.is_dir():
        raise LayoutError(root, f"is a file, not a folder; {dataset} expects {expected}")
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise LayoutError(root, f"folder cannot be read ({exc.strerror or exc})") from None
    return root


def descend_once(root: Path, looks_right: Callable[[Path], bool]) -> Path | None:
    """``root`` if ``looks_right(root)``; else its only sub-folder that looks
    right (a zip extracted into its own folder); else ``None``.

    Several matching sub-folders are ambiguous and also give ``None``.
    """
    if looks_right(root):
        return root
    hits = [d for d in child_dirs(root) if looks_right(d)]
    return hits[0] if len(hits) == 1 else None


def collect_frames(folder: Path, *, companions: Iterable[str] = ()
                   ) -> tuple[tuple[Frame, ...], list[Skipped]]:
    """The image files of a frame folder as frames in natural order.

    Args:
        folder: a folder that holds one sequence's frames.
        companions: extensions (``".wrl"``) of files the dataset ships next to
            its frames on purpose; they are passed over silently.

    Returns:
        ``(frames, skipped)``: frames indexed 0..n-1 in natural file-name order;
        skipped lists every other file ("not an image file") and every
        sub-folder. Hidden files and OS clutter are ignored silently. A folder
        that cannot be listed gives no frames and one :func:`unreadable` skip.
    """
    companion_set = {c.lower() for c in companions}
    images: list[Path] = []
    skipped: list[Skipped] = []
    try:
        listing = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    except OSError as exc:
        return (), [unreadable(folder, exc)]
    for entry in listing:
        if is_clutter(entry):
            continue
        if entry.is_dir():
            skipped.append(Skipped(str(entry), "sub-folder inside a frame folder (not scanned)"))
        elif is_image_file(entry):
            images.append(entry)
        elif entry.suffix.lower() not in companion_set:
            skipped.append(Skipped(str(entry), "not an image file"))
    frames = tuple(Frame(path=str(p), index=i) for i, p in enumerate(images))
    return frames, skipped


def canonical_label(name: str) -> str | None:
    """Canonical label for an expression name as datasets spell it.

    >>> canonical_label("Happiness"), canonical_label("Angry"), canonical_label("SA")
    ('happy', 'anger', 'sadness')
    >>> canonical_label("Smirk") is None
    True
    """
    return _LABEL_ALIASES.get(name.strip().lower())


def sort_sequences(sequences: Iterable[Sequence]) -> list[Sequence]:
    """Sequences sorted by :func:`natural_key` of their name."""
    return sorted(sequences, key=lambda s: natural_key(s.name))


SequenceMaker = Callable[[str, Path], "tuple[Sequence | None, list[Skipped]]"]


def scan_subject_folders(base: Path, subject_pattern: "re.Pattern[str]", expected: str,
                         make_sequence: SequenceMaker) -> tuple[list[Sequence], list[Skipped]]:
    """Walk ``base/<subject>/<expression>/``: the layout Oulu-CASIA and BU-4DFE share.

    ``make_sequence(subject, expression_dir)`` turns one expression folder into a
    sequence (or ``None``) plus what it skipped. Folders that do not match
    ``subject_pattern`` and files directly in a subject folder are skipped with a
    reason (``expected`` names the subject-folder form, e.g. ``"Pxxx"``).
    """
    sequences: list[Sequence] = []
    skipped: list[Skipped] = []
    for subject_dir in child_dirs(base):
        if not subject_pattern.match(subject_dir.name):
            skipped.append(Skipped(str(subject_dir), f"not a subject folder (expected {expected})"))
            continue
        try:
            expr_dirs, files = child_dirs(subject_dir), child_files(subject_dir)
        except OSError as exc:
            skipped.append(unreadable(subject_dir, exc))
            continue
        for expr_dir in expr_dirs:
            try:
                seq, why = make_sequence(subject_dir.name, expr_dir)
            except OSError as exc:
                seq, why = None, [unreadable(expr_dir, exc)]
            skipped.extend(why)
            if seq is not None:
                sequences.append(seq)
        skipped.extend(Skipped(str(f), "file outside an expression folder") for f in files)
    return sort_sequences(sequences), skipped


def listed(skipped: list[Skipped], folder: Path) -> bool:
    """False when ``folder`` itself is among ``skipped`` (it could not be listed), so an
    adapter does not add "no image files" on top."""
    return not any(s.path == str(folder) for s in skipped)
