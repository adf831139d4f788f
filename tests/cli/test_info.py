"""``facekit info`` (the click command; logic is tested in tests/inspect)."""
from __future__ import annotations

import json
import os
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
        assert r.stdout.startswith(f"{synth}: facekit/faces v2")
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

    def test_damaged_part_is_named(self, synth: Path) -> None:
        """Item 8 of issue 24: a truncated part is one ``error: PART: reason`` line."""
        part = sorted(Path(f"{synth}.parts").iterdir())[0]
        os.truncate(part, 1000)
        r = run(synth)
        assert r.exit_code == 2 and r.stdout == ""
        assert r.stderr.startswith(f"error: {part}: damaged part file: 1000 bytes where ")
        assert len(r.stderr.strip().splitlines()) == 1

    def test_check_reads_every_part(self, synth: Path) -> None:
        r = run(synth, "--check", "-q")
        assert r.exit_code == 0, r.output
        assert "check       2 part files" in r.stdout and "intact" in r.stdout
        r = run(synth, "--check", "--json", "-q")
        assert json.loads(r.stdout)["check"]["problems"] == []
        part = sorted(Path(f"{synth}.parts").iterdir())[1]
        with h5py.File(part, "r") as h:
            offset = h["samples/image"].id.get_chunk_info(0).byte_offset
        with open(part, "r+b") as fh:
            fh.seek(offset)
            fh.write(b"\xff\xfe\xfd")
        assert run(synth).exit_code == 0                      # same size: the cheap check passes
        r = run(synth, "--check", "-q")
        assert r.exit_code == 2 and r.stdout == ""
        assert r.stderr.strip() == f"error: {part}: CRC-32 differs from the recorded one (the bytes changed)"

    @pytest.mark.parametrize("attr", ["label_names", "config"])
    def test_attribute_that_is_not_json(self, synth: Path, attr: str) -> None:
        """Item 11 of issue 24: the message names the file."""
        with h5py.File(synth, "r+") as f:
            f.attrs[attr] = "not json"
        r = run(synth)
        assert r.exit_code == 2 and r.stderr.startswith(f"error: {synth}: attribute '{attr}' is not valid JSON")

    def test_file_without_subject_column(self, synth: Path) -> None:
        """Item 11 of issue 24: no KeyError traceback."""
        with h5py.File(synth, "r+") as f:
            del f["samples/subject"]
        r = run(synth)
        assert r.exit_code == 2 and r.stderr.strip() == \
            f"error: {synth}: incomplete facekit file: samples/subject is missing"

    def test_missing_parts(self, synth: Path) -> None:
        for part in Path(f"{synth}.parts").iterdir():
            part.unlink()
        r = run(synth)
        assert r.exit_code == 2 and "part file(s) missing" in r.stderr and "out.h5" in r.stderr
