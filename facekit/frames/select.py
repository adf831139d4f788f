"""Frame selection specs.

``last:N``
    the last N frames (CK+, Oulu-CASIA: sequences go from neutral to peak, so
    the last three frames are the peak expression).
``middle:N``
    N frames centred on the middle frame (MMI: sequences go neutral -> peak ->
    neutral, so the peak is in the middle). For even differences the extra
    frame goes after the centre.
``first:N``
    the first N frames (e.g. neutral references).
``all``
    every frame (BU-4DFE identity pretraining, still-image datasets).

A sequence shorter than N yields all its frames.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FrameSpec", "parse_frame_spec", "select_frames"]

_SPEC = re.compile(r"^\s*(last|middle|first)\s*:\s*(\d+)\s*$|^\s*(all)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FrameSpec:
    """A parsed frame-selection rule; ``count`` is ``None`` for ``all``."""

    mode: str
    count: int | None = None

    def __str__(self) -> str:
        return self.mode if self.count is None else f"{self.mode}:{self.count}"


def parse_frame_spec(spec: str | FrameSpec) -> FrameSpec:
    """Parse ``"last:3"``, ``"middle:3"``, ``"first:1"`` or ``"all"``.

    Raises:
        ValueError: for anything else, with the accepted forms in the message.
    """
    if isinstance(spec, FrameSpec):
        return spec
    m = _SPEC.match(str(spec))
    if not m:
        raise ValueError(f"invalid frame selection {spec!r}: use last:N, middle:N, first:N or all")
    if m.group(3):
        return FrameSpec("all")
    count = int(m.group(2))
    if count < 1:
        raise ValueError(f"invalid frame selection {spec!r}: N must be at least 1")
    return FrameSpec(m.group(1).lower(), count)


def select_frames(n_frames: int, spec: str | FrameSpec) -> list[int]:
    """Indices (ascending) of the frames that ``spec`` selects from ``n_frames``.

    >>> select_frames(10, "last:3")
    [7, 8, 9]
    >>> select_frames(10, "middle:3")
    [4, 5, 6]
    >>> select_frames(2, "last:3")
    [0, 1]
    """
    if n_frames < 0:
        raise ValueError("n_frames must be >= 0")
    s = parse_frame_spec(spec)
    if s.count is None or s.count >= n_frames:
        return list(range(n_frames))
    k = s.count
    if s.mode == "last":
        start = n_frames - k
    elif s.mode == "first":
        start = 0
    else:  # middle: centre on frame n//2
        start = n_frames // 2 - (k - 1) // 2
        start = min(max(start, 0), n_frames - k)
    return list(range(start, start + k))
