"""``facekit info`` (the click command; logic is tested in tests/inspect)."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

import cli._info  # noqa: F401  (registers the command on the group)
from cli.facekit import main
from facekit.split import create_folds
from facekit.testing import make_synthetic_file


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return make_synthetic_file(tmp_path / "out.h5", n_subjects=4, augment="paper",
                               label_names=["anger", "happy", "surprise"])


def run(*args: object):
    return CliRunner().invoke(main, ["info", *map(str, args)])


class TestInfoCommand:
    def test_text(self, synth: Path) -> None:
        r = run(synth)
        assert r.exit_code == 0, r.output
        assert r.stdout.startswith(f"{synth}: facekit/faces v1")
        for needle in ("dataset     synthetic", "samples     480  (32x32 uint8 grayscale; augment paper, 20 per face)",
                       "classes     3", "folds       none", "rejects     1", "cannot be decoded as an image"):
            assert needle in r.stdout

    def test_json(self, synth: Path) -> None:
        create_folds(synth, k=2)
        r = run(synth, "--json")
        assert r.exit_code == 0, r.output
        info = json.loads(r.stdout)
        assert info["info_version"] == 1 and info["counts"]["subjects"] == 4
        assert info["folds"]["k"] == 2 and [c["name"] for c in info["classes"]] == ["anger", "happy", "surprise"]

    def test_verbose(self, synth: Path) -> None:
        r = run(synth, "-v")
        assert r.exit_code == 0
        assert any(line.split()[:3] == ["subject", "fold", "samples"] for line in r.stdout.splitlines())


class TestInfoRefusals:
    def test_not_a_facekit_file(self, tmp_path: Path) -> None:
        p = tmp_path / "other.h5"
        h5py.File(p, "w").close()
        r = run(p)
        assert r.exit_code == 2 and r.stdout == ""
        assert r.stderr.startswith("error: ") and "other.h5: not a facekit file" in r.stderr

    def test_missing_file(self, tmp_path: Path) -> None:
        r = run(tmp_path / "nope.h5", "--json")
        assert r.exit_code == 2 and "nope.h5: file does not exist" in r.stderr

    def test_missing_parts(self, synth: Path) -> None:
        for part in Path(f"{synth}.parts").iterdir():
            part.unlink()
        r = run(synth)
        assert r.exit_code == 2 and "part file(s) missing" in r.stderr and "out.h5" in r.stderr
