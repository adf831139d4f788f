"""What an analysis run reads (private): the command line's paths -> inputs.

* A file named on the command line is always an input: an image or a video
  when its content says so (:func:`facekit.media.media_kind`), otherwise a
  rejected input with the reason (empty, unreadable, neither).
* A folder is searched recursively (natural order, hidden files and OS clutter
  left out). Files recognised by content are inputs. A file that is not
  recognised is a rejected input when its extension promises an image or a
  video (a truncated or empty ``.jpg`` deserves a row saying so) and is
  otherwise only counted as skipped (the ``labels.txt`` next to the frames).
* The same file reached twice (named and inside a named folder, or through a
  symbolic link) is analysed once.
* The run's own output folders (``OUT.parts/``, the aligned faces) are never
  searched, so a resumed run does not analyse what the first one wrote.
"""
from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..datasets._base import natural_key
from ..datasets._common import IMAGE_EXTENSIONS, is_clutter
from ..errors import FileError
from ..media import VIDEO_EXTENSIONS, media_kind
from .._fs import printable

__all__ = ["Input", "discover", "NOT_MEDIA"]

NOT_MEDIA = "not an image or a video"


@dataclass(frozen=True)
class Input:
    """One input: ``kind`` is ``"image"``, ``"video"`` or ``"reject"`` (then ``reason`` says why).

    ``name`` is what the table's ``input`` column shows: the path as the user
    spelled it (a folder argument joined with the path inside it), with bytes
    that are not UTF-8 escaped.
    """

    path: str
    name: str
    kind: str
    reason: str = ""


def _reject_reason(path: Path) -> str:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file (a pipe, socket or device)"     # never opened: that could block
        size = st.st_size
        with open(path, "rb"):
            pass
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "file is empty (0 bytes)"
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return "cannot be opened as a video (corrupt, truncated or not a video OpenCV can decode)"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "cannot be decoded as an image (corrupt, truncated or not an image file)"
    return f"{NOT_MEDIA} (no known signature and OpenCV cannot decode it)"


def _classify(path: Path, name: str, named: bool) -> Input | None:
    kind = media_kind(path)
    if kind is not None:
        return Input(str(path), name, kind)
    promised = path.suffix.lower() in IMAGE_EXTENSIONS or path.suffix.lower() in VIDEO_EXTENSIONS
    if named or promised:
        return Input(str(path), name, "reject", _reject_reason(path))
    return None


def _walk(folder: Path, skipped: Counter, seen_dirs: set, exclude: set) -> list[Path]:
    """Files under ``folder``, depth first in natural order; unreadable folders counted."""
    try:
        real = folder.resolve()
    except OSError:
        real = folder
    if real in seen_dirs or real in exclude:   # a symbolic-link loop, or the run's own output
        return []
    seen_dirs.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    except PermissionError:
        skipped["folder cannot be read (permission denied)"] += 1
        return []
    except OSError as exc:
        skipped[f"folder cannot be read ({exc.strerror or exc})"] += 1
        return []
    files: list[Path] = []
    for entry in entries:
        if is_clutter(entry):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            files.extend(_walk(entry, skipped, seen_dirs, exclude))
        else:
            files.append(entry)
    return files


def discover(paths: Sequence[str | os.PathLike], exclude: Sequence[str | os.PathLike] = ()
             ) -> tuple[list[Input], Counter]:
    """The inputs under ``paths`` in order, and what was skipped (reason -> count).

    Folders in ``exclude`` (and what is under them) are left out of folder searches.

    Raises:
        FileError: a path on the command line does not exist (a typo is refused
            before any work is done); none of ``paths`` given.
    """
    if not paths:
        raise FileError(".", "no inputs given")
    inputs: list[Input] = []
    skipped: Counter = Counter()
    seen: set[str] = set()
    excluded = {Path(p).resolve() for p in exclude}

    def add(item: Input | None, path: Path) -> None:
        if item is None:
            skipped[NOT_MEDIA] += 1
            return
        try:
            key = str(path.resolve())
        except OSError:
            key = str(path.absolute())
        if key in seen:
            return
        seen.add(key)
        inputs.append(item)

    for arg in paths:
        p = Path(arg)
        if not os.path.lexists(p):
            raise FileError(printable(p), "does not exist")
        if p.is_dir():
            for f in _walk(p, skipped, set(), excluded):
                add(_classify(f, printable(f), named=False), f)
        else:
            add(_classify(p, printable(p), named=True), p)
    return inputs, skipped
