"""``facekit folds`` (the click command; logic is tested in tests/split)."""
from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import cli._folds  # noqa: F401  (registers the command on the group)
from cli.facekit import main
from facekit.split import read_folds
from facekit.testing import make_synthetic_file


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return make_synthetic_file(tmp_path / "out.h5", n_subjects=8, augment="paper")


def run(*args: str):
    return CliRunner().invoke(main, ["folds", *map(str, args)])


class TestFoldsCommand:
    def test_writes_folds_and_prints_table(self, synth: Path) -> None:
        r = run(synth, "--k", "4", "--seed", "3")
        assert r.exit_code == 0, r.output
        lines = r.stdout.splitlines()
        assert lines[0] == "4 folds (StratifiedGroupKFold, seed 3) over 8 subjects, 960 samples"
        assert lines[1].split() == ["fold", "subjects", "samples", "class0", "class1", "class2"]
        assert [ln.split()[0] for ln in lines[2:6]] == ["0", "1", "2", "3"]
        assert lines[-1] == f"wrote /folds to {synth}"
        a = read_folds(synth)
        assert (a.k, a.seed) == (4, 3)

    def test_export_csv(self, synth: Path, tmp_path: Path) -> None:
        r = run(synth, "-k", "2", "--export", tmp_path / "folds.csv")
        assert r.exit_code == 0, r.output
        rows = list(csv.DictReader((tmp_path / "folds.csv").open()))
        assert len(rows) == 8 and set(rows[0]) == {"subject", "fold", "samples"}
        assert "subject -> fold to" in r.stdout

    def test_loso(self, synth: Path) -> None:
        r = run(synth, "--k", "8")
        assert r.exit_code == 0 and "LeaveOneSubjectOut" in r.stdout

    def test_force_replaces(self, synth: Path) -> None:
        assert run(synth, "--k", "4").exit_code == 0
        r = run(synth, "--k", "2", "--force")
        assert r.exit_code == 0 and read_folds(synth).k == 2

    def test_json(self, synth: Path, tmp_path: Path) -> None:
        import json
        r = run(synth, "--k", "4", "--seed", "3", "--json", "--export", tmp_path / "f.csv")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert (out["k"], out["seed"], out["method"], out["samples"], out["subjects"]) == \
            (4, 3, "StratifiedGroupKFold", 960, 8)
        assert [f["fold"] for f in out["folds"]] == [0, 1, 2, 3] and out["export"] == str(tmp_path / "f.csv")
        assert sum(f["samples"] for f in out["folds"]) == 960 and out["file"] == str(synth)

    def test_help(self) -> None:
        r = CliRunner().invoke(main, ["folds", "--help"])
        assert r.exit_code == 0
        assert all(opt in r.output for opt in ("--k", "--seed", "--export", "--force"))


class TestFoldsRefusals:
    """Each refusal: exit 2, one ``error: FILE: reason`` line, nothing written."""

    def _refused(self, r, *needles: str) -> None:
        assert r.exit_code == 2, r.output
        assert r.stdout == ""
        assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
        for n in needles:
            assert n in r.stderr, r.stderr

    @pytest.mark.parametrize("k", ["1", "0"])
    def test_k_below_two(self, synth: Path, k: str) -> None:
        self._refused(run(synth, "--k", k), "out.h5", f"k must be at least 2 (got k={k})")
        assert read_folds(synth) is None

    def test_k_above_subjects(self, synth: Path) -> None:
        self._refused(run(synth, "--k", "9"), "out.h5", "k=9 is larger than the number of subjects (8)")

    def test_no_subject_ids(self, tmp_path: Path) -> None:
        p = make_synthetic_file(tmp_path / "anon.h5")
        with h5py.File(p, "r+") as h5:
            del h5["samples/subject"]
        self._refused(run(p), "anon.h5", "has no subject ids")

    def test_not_a_facekit_file(self, tmp_path: Path) -> None:
        p = tmp_path / "other.h5"
        with h5py.File(p, "w") as h5:
            h5["x"] = np.arange(3)
        self._refused(run(p, "--k", "2"), "other.h5", "not a facekit file")

    def test_missing_file(self, tmp_path: Path) -> None:
        self._refused(run(tmp_path / "nope.h5"), "nope.h5", "file does not exist")

    def test_existing_folds_without_force(self, synth: Path) -> None:
        assert run(synth, "--k", "4").exit_code == 0
        before = synth.read_bytes()
        self._refused(run(synth, "--k", "2"), "out.h5", "already has folds (k=4", "--force")
        assert synth.read_bytes() == before

    def test_damaged_part(self, synth: Path) -> None:
        """Item 8 of issue 24: refused before anything is written, naming the part."""
        import os
        part = sorted(Path(f"{synth}.parts").iterdir())[0]
        os.truncate(part, 500)
        before = synth.read_bytes()
        self._refused(run(synth, "--k", "2"), str(part), "damaged part file: 500 bytes")
        assert synth.read_bytes() == before

    def test_refused_while_a_prepare_holds_the_file(self, synth: Path) -> None:
        """Item 6 of issue 24: folds are not written into a file that a prepare run is replacing."""
        import subprocess
        import sys
        code = ("import sys; from facekit.store import lock_output\n"
                f"l = lock_output({str(synth)!r}, doing='prepare'); print('ready', flush=True); sys.stdin.read()")
        holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout.readline().strip() == "ready"
            self._refused(run(synth, "--k", "2"), f"{synth}: locked by pid {holder.pid}", "a prepare run")
        finally:
            holder.stdin.close()
            holder.wait(30)
        assert read_folds(synth) is None
        assert run(synth, "--k", "2").exit_code == 0

    def test_read_only_folder(self, unprivileged, tmp_path: Path) -> None:
        """Item 2 of issue 24: one line, no PermissionError traceback (unprivileged: root writes anywhere)."""
        ro = unprivileged.dir / "ro"
        ro.mkdir()
        p = make_synthetic_file(ro / "out.h5", n_subjects=8)
        ro.chmod(0o555)
        r = unprivileged.cli("folds", p, "--k", "2")
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
        assert r.stderr.strip() == (f"error: {p}: cannot write in {ro} (its lock file out.h5.lock goes there: "
                                    "Permission denied)")

    def test_export_folder_missing(self, synth: Path, tmp_path: Path) -> None:
        self._refused(run(synth, "--k", "2", "--export", tmp_path / "no" / "f.csv"), "f.csv", "does not exist")
        assert read_folds(synth) is None
