from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from degan.errors import RunDirError
from degan.outputs import check_writable_dir


class TestWriteJson:
    def test_atomic_and_readable(self, tmp_path: Path) -> None:
        from degan.outputs import write_json
        p = write_json(tmp_path / "m.json", {"a": [1, 2]})
        assert json.loads(p.read_text()) == {"a": [1, 2]} and [f.name for f in tmp_path.iterdir()] == ["m.json"]

    def test_failure_keeps_the_old_file(self, tmp_path: Path) -> None:
        from degan.outputs import write_json
        p = write_json(tmp_path / "m.json", {"ok": 1})
        with pytest.raises(TypeError):
            write_json(p, {"bad": object()})               # not JSON-serialisable
        assert json.loads(p.read_text()) == {"ok": 1} and [f.name for f in tmp_path.iterdir()] == ["m.json"]


class TestCheckWritableDir:
    def test_existing_new_and_nested(self, tmp_path: Path) -> None:
        check_writable_dir(tmp_path)
        check_writable_dir(tmp_path / "a" / "b")
        assert [p.name for p in tmp_path.iterdir()] == []          # the probe leaves nothing

    def test_refusals(self, tmp_path: Path) -> None:
        f = tmp_path / "file"
        f.write_text("x")
        with pytest.raises(RunDirError, match="exists and is not a directory"):
            check_writable_dir(f)
        with pytest.raises(RunDirError, match="is not a directory"):
            check_writable_dir(f / "run")
        if sys.platform.startswith("linux"):                       # a read-only file system
            with pytest.raises(RunDirError, match="/proc/x: cannot be created: /proc is not writable"):
                check_writable_dir(Path("/proc/x"))
