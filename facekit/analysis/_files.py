"""File names of an analysis run (private).

Atomic writes, temporaries and the run lock are :mod:`facekit._fs`'s, as for every
other output of facekit.
"""
from __future__ import annotations

import re

__all__ = ["safe_file_name"]

_UNSAFE = re.compile(r"[^\w.+-]+")


def safe_file_name(name: str) -> str:
    """A one-component file name made from a path: separators become ``__``,
    other characters outside ``[A-Za-z0-9_.+-]`` become ``_``; no leading dots."""
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    parts = ["up" if p == ".." else _UNSAFE.sub("_", p) for p in parts]
    return "__".join(parts).lstrip(".") or "input"
