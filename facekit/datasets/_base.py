"""Data model shared by all dataset adapters.

An adapter turns a dataset's released folder layout into a list of
:class:`Sequence` objects (one per recorded expression sequence, or one per still
image for still-image datasets) plus a list of :class:`Skipped` entries for what
it could not use. It reads no pixels: decoding happens later in worker processes.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import LayoutError

__all__ = ["Frame", "Sequence", "Skipped", "ScanResult", "DatasetAdapter", "natural_key"]


@dataclass(frozen=True)
class Frame:
    """One frame: an image file, or frame ``index`` of the video file ``path``.

    ``index`` is the frame's position in its sequence (0-based) and is what the
    HDF5 ``frame`` column stores.
    """

    path: str
    index: int
    video: bool = False


@dataclass(frozen=True)
class Sequence:
    """A recorded expression sequence (or a single still image).

    Attributes:
        subject: subject identifier as the dataset spells it (``"S005"``).
        name: unique sequence identifier within the dataset (``"S005/001"``).
        label: expression name, one of the scan's ``labels``, or ``None`` for
            unlabelled data (identity-only pretraining).
        frames: all frames in temporal order; frame selection picks from these.
    """

    subject: str
    name: str
    label: str | None
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class Skipped:
    """Something the adapter saw but could not use, and why."""

    path: str
    reason: str


@dataclass
class ScanResult:
    """What :meth:`DatasetAdapter.scan` found.

    ``labels`` fixes the label order (the integer stored in HDF5 is the index
    into it); ``sequences`` are sorted by name so that runs are reproducible.
    """

    labels: tuple[str, ...]
    sequences: list[Sequence]
    skipped: list[Skipped] = field(default_factory=list)


_NUM = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in _NUM.split(text))


class DatasetAdapter(ABC):
    """Base class of dataset adapters.

    Subclasses set the class attributes and implement :meth:`scan`. Options
    (``--option key=value`` on the command line) arrive as keyword arguments of
    ``__init__``; :attr:`options` declares them with their defaults.
    """

    #: registry name, e.g. ``"ck+"``
    name: ClassVar[str] = ""
    #: one-line description for ``facekit prepare --help``
    description: ClassVar[str] = ""
    #: frame selection used when the user gives none (see :mod:`facekit.frames`)
    default_frames: ClassVar[str] = "all"
    #: adapter options and their defaults
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ValueError(f"dataset {self.name!r} has no option {unknown[0]!r} (options: {known})")
        self.config: dict[str, Any] = {**self.options, **options}

    @abstractmethod
    def scan(self, root: Path) -> ScanResult:
        """List the sequences under ``root``.

        Raises:
            LayoutError: ``root`` is not this dataset's layout (names the folder
                and says what was expected).
        """

    # helpers shared by adapters -------------------------------------------------
    def _require_dir(self, root: Path, expected: str) -> Path:
        root = Path(root)
        if not root.exists():
            raise LayoutError(root, "folder does not exist")
        if not root.is_dir():
            raise LayoutError(root, f"is not a folder; {self.name} expects {expected}")
        return root

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({opts})"
