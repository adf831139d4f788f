"""Checkpoints: written atomically (temporary file, fsync, rename), validated on load.

A checkpoint is a dict saved with ``torch.save``::

    {"format": "degan-checkpoint", "version": 1, "stage": "gan"|"local"|"baseline"|"done",
     "epoch": int (epochs completed in that stage), "models": {name: state_dict},
     "optimizers": {name: state_dict}, "scalers": {...}, "state": {...}, "config": dict,
     "meta": dict (label names, identity names, channels, ...), "history": list[dict]}

A partly written or truncated file never replaces a good one, so an
interrupted run (or a NaN stop) leaves the last good checkpoint in place.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from facekit.store._atomic import atomic_output

from .errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT", "VERSION"]

FORMAT = "degan-checkpoint"
VERSION = 1
_REQUIRED = ("stage", "epoch", "models", "config", "meta")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_output(path) as tmp:
        torch.save(data, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, truncated/corrupt, or not a degan checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(path, f"cannot be read as a checkpoint (corrupt or truncated?): "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(path, "not a degan checkpoint")
    if int(data.get("version", 0)) > VERSION:
        raise CheckpointError(path, f"checkpoint version {data.get('version')} is newer than this degan reads")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(path, f"incomplete checkpoint: missing {', '.join(missing)}")
    return data
