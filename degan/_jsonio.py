"""Small JSON outputs of a run directory, written atomically (temporary file + rename)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from facekit.store import atomic_output


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path``; a reader never sees a half-written file."""
    path = Path(path)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2))
    return path
