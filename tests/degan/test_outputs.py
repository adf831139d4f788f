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


class TestCsvCell:
    @pytest.mark.parametrize("text, cell", [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"), ("+1+2", "'+1+2"), ("-x", "'-x"), ("@cmd", "'@cmd"), ("\tx", "'\tx"),
        ("\rx", "'\rx"), ("'quoted", "''quoted"), ("happy", "happy"), ("a=b", "a=b"), ("-0.5", "-0.5"),
        ("+3", "+3"), ("1e-3", "1e-3"), ("", "")])
    def test_text_that_could_run_is_quoted_and_read_back(self, text: str, cell: str) -> None:
        from degan.outputs import csv_cell, csv_text
        assert csv_cell(text) == cell and csv_text(cell) == text

    def test_numbers_stay_numbers(self) -> None:
        import numpy as np

        from degan.outputs import csv_cell
        for v in (-1, -0.25, np.int64(-3), np.float32(-1.5), 0):
            assert csv_cell(v) is v
