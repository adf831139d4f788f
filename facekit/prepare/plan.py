"""Turning a dataset scan into work: selected frames, grouped into parts."""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .._fs import printable
from ..datasets import Frame, ScanResult, Skipped
from ..frames import select_frames
from .config import auto_part_target

__all__ = ["WorkItem", "Part", "plan_items", "plan_parts", "relative_source", "part_index_of"]

#: reason given for files and sequences whose names cannot be stored (HDF5 strings are UTF-8)
NOT_UTF8 = "name is not valid UTF-8 (the file system holds other bytes); rename it to use it"


def _is_utf8(text: str | None) -> bool:
    if text is None:
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def part_index_of(name: str) -> int | None:
    """Index of a part file name (``part-00003-of-00027.h5`` -> 3), ``None`` for other names."""
    if not (name.startswith("part-") and name.endswith(".h5")):
        return None
    head = name[5:].split("-of-", 1)[0]
    return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class WorkItem:
    """The selected frames of one sequence."""

    subject: str
    sequence: str
    label: int                   # index into the label names, -1 unlabelled
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class Part:
    """A contiguous run of work items written to one part file."""

    index: int
    count: int                   # total number of parts
    items: tuple[WorkItem, ...]

    @property
    def n_frames(self) -> int:
        return sum(len(it.frames) for it in self.items)

    @property
    def filename(self) -> str:
        return f"part-{self.index:05d}-of-{self.count:05d}.h5"

    def items_digest(self, root: Path) -> str:
        h = hashlib.sha256()
        for it in self.items:
            h.update(f"{it.subject}|{it.sequence}|{it.label}".encode())
            for fr in it.frames:
                h.update(f"|{relative_source(fr.path, root)}#{fr.index}".encode())
        return h.hexdigest()[:16]


def relative_source(path: str, root: Path) -> str:
    """``path`` relative to the dataset root when it lies under it (portable across machines).

    Lexical (``os.path.abspath``), no file-system calls: it runs for every frame.
    """
    p = os.path.abspath(path)
    root_s = os.fspath(root)
    base = _abs_root(root_s) if os.path.isabs(root_s) else _with_sep(os.path.abspath(root_s))  # cwd may change
    if p.startswith(base) and len(p) > len(base):
        rel = p[len(base):]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return "." if p + os.sep == base or p == base else str(path)


@functools.lru_cache(maxsize=16)
def _abs_root(root: str) -> str:
    """Normalised absolute ``root`` with a trailing separator (cached: only absolute roots come here)."""
    return _with_sep(os.path.abspath(root))


def _with_sep(path: str) -> str:
    return path if path.endswith(os.sep) else path + os.sep


def plan_items(scan: ScanResult, frames: str, limit: int | None = None) -> tuple[list[WorkItem], list[Skipped]]:
    """Apply frame selection to every sequence.

    Returns the work items and extra skips: sequences with no frames, and files
    and sequences whose names are not valid UTF-8 (they cannot be stored; the
    skip names them in :func:`facekit._fs.printable` form, and a sequence keeps its other
    frames).
    """
    label_index = {name: i for i, name in enumerate(scan.labels)}
    items: list[WorkItem] = []
    skipped: list[Skipped] = []
    seqs = scan.sequences if limit is None else scan.sequences[:limit]
    for seq in seqs:
        if not seq.frames:
            skipped.append(Skipped(printable(seq.name), "sequence has no frames"))
            continue
        usable = tuple(f for f in seq.frames if _is_utf8(f.path))
        if len(usable) < len(seq.frames):       # each such file is rejected by name; the rest is used
            skipped.extend(Skipped(printable(f.path), f"file {NOT_UTF8}") for f in seq.frames
                           if not _is_utf8(f.path))
            if not usable:
                continue
        if not all(_is_utf8(t) for t in (seq.subject, seq.name, seq.label)):
            skipped.append(Skipped(printable(seq.name), f"sequence {NOT_UTF8}"))
            continue
        chosen = tuple(usable[i] for i in select_frames(len(usable), frames))
        label = -1 if seq.label is None else label_index[seq.label]
        items.append(WorkItem(seq.subject, seq.name, label, chosen))
    return items, skipped


def plan_parts(items: list[WorkItem], part_faces: int | None = None) -> list[Part]:
    """Group consecutive items (whole sequences) into parts.

    ``part_faces`` frames per part, or, when ``None``, decreasing sizes
    (:func:`~facekit.prepare.config.auto_part_target`): large parts first, so
    there are few part files, and small ones last, so the workers finish together.
    Depends only on the items and ``part_faces`` (never on the number of
    workers or machines), so every machine of a sharded run plans the same parts.
    """
    if part_faces is not None and part_faces < 1:
        raise ValueError("part_faces must be >= 1")
    remaining = sum(len(it.frames) for it in items)
    groups: list[list[WorkItem]] = []
    current: list[WorkItem] = []
    n = 0
    target = part_faces or auto_part_target(remaining)
    for it in items:
        current.append(it)
        n += len(it.frames)
        if n >= target:
            groups.append(current)
            remaining -= n
            current, n = [], 0
            target = part_faces or auto_part_target(remaining)
    if current:
        groups.append(current)
    return [Part(i, len(groups), tuple(g)) for i, g in enumerate(groups)]
