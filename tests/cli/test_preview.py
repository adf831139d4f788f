"""``facekit preview`` (the click command; drawing is tested in tests/inspect)."""
from __future__ import annotations

from pathlib import Path

import h5py
import matplotlib.image
import pytest
from click.testing import CliRunner

import cli._preview  # noqa: F401  (registers the command on the group)
from cli.facekit import main
from facekit.testing import make_synthetic_file


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return make_synthetic_file(tmp_path / "out.h5", n_subjects=4, augment="paper")


def run(*args: object):
    return CliRunner().invoke(main, ["preview", *map(str, args)])


class TestPreviewCommand:
    def test_contact_sheet(self, synth: Path, tmp_path: Path) -> None:
        out = tmp_path / "sheet.png"
        r = run(synth, "-o", out, "--per-class", "3", "--tile", "64")
        assert r.exit_code == 0, r.output
        img = matplotlib.image.imread(out)
        assert f"wrote {out} ({img.shape[1]}x{img.shape[0]} px): 3 classes x up to 3 faces" in r.stdout
        assert img[..., :3].std() * 255 > 20

    def test_source(self, synth: Path, tmp_path: Path) -> None:
        out = tmp_path / "face.png"
        r = run(synth, "-o", out, "--source", "5", "--no-landmarks")
        assert r.exit_code == 0, r.output
        assert "face 5: 20 samples" in r.stdout
        assert matplotlib.image.imread(out).std() * 255 > 20

    def test_source_augment_none_says_so(self, tmp_path: Path) -> None:
        p = make_synthetic_file(tmp_path / "none.h5")
        r = run(p, "-o", tmp_path / "f.png", "--source", "0")
        assert r.exit_code == 0 and "1 sample (prepared with --augment none" in r.stdout

    @pytest.mark.parametrize(("extra", "tile"), [((), 256), (("--tile", "64"), 64)])
    def test_single_sample_tile(self, tmp_path: Path, extra: tuple[str, ...], tile: int) -> None:
        """A face with one sample is drawn on a 256-px tile unless --tile says otherwise."""
        p = make_synthetic_file(tmp_path / "none.h5")
        r = run(p, "-o", tmp_path / "f.png", "--source", "0", *extra)
        assert r.exit_code == 0, r.output
        height = matplotlib.image.imread(tmp_path / "f.png").shape[0]
        assert height == 2 * 10 + 3 * 17 + 6 + 14 + tile  # margins, 3 title lines, the caption, one tile
        assert f"x{height} px): face 0: 1 sample" in r.stdout

    @pytest.mark.parametrize("flag", ["-o", "--out", "--output"])
    def test_output_spellings_and_json(self, synth: Path, tmp_path: Path, flag: str) -> None:
        import json
        out = tmp_path / "s.png"
        r = run(synth, flag, out, "--per-class", "2", "--json")
        assert r.exit_code == 0, r.output
        res = json.loads(r.stdout)
        assert res["out"] == str(out) and res["width"] > 0 and out.exists()


class TestPreviewRefusals:
    def test_output_required(self, synth: Path) -> None:
        r = run(synth)
        assert r.exit_code == 2 and "Missing option '-o'" in r.output

    def test_face_out_of_range(self, synth: Path, tmp_path: Path) -> None:
        r = run(synth, "-o", tmp_path / "f.png", "--source", "999")
        assert r.exit_code == 2 and r.stderr.startswith("error: ")
        assert "out.h5: has no face 999: faces are numbered 0..23" in r.stderr
        assert not (tmp_path / "f.png").exists()

    def test_not_a_facekit_file(self, tmp_path: Path) -> None:
        p = tmp_path / "other.h5"
        h5py.File(p, "w").close()
        r = run(p, "-o", tmp_path / "s.png")
        assert r.exit_code == 2 and "other.h5: not a facekit file" in r.stderr

    def test_damaged_part(self, synth: Path, tmp_path: Path) -> None:
        """Item 8 of issue 24: named before anything is drawn (was a raw HDF5 OSError)."""
        import os
        part = sorted(Path(f"{synth}.parts").iterdir())[1]
        os.truncate(part, os.path.getsize(part) // 3)
        r = run(synth, "-o", tmp_path / "s.png")
        assert r.exit_code == 2 and r.stderr.startswith(f"error: {part}: damaged part file: ")
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.png").exists()

    def test_part_damaged_inside_names_the_check(self, synth: Path, tmp_path: Path) -> None:
        """Same size, broken HDF5 superblock: passes the check at open, fails on reading;
        one line that points at ``info --check`` (not a raw HDF5 traceback)."""
        part = sorted(Path(f"{synth}.parts").iterdir())[0]
        with open(part, "r+b") as fh:
            fh.seek(8)
            fh.write(b"\xff" * 40)
        r = run(synth, "-o", tmp_path / "s.png")
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert r.stderr.startswith(f"error: {synth}: cannot read its images (") and "--check" in r.stderr

    def test_read_only_folder(self, synth: Path, unprivileged) -> None:
        """Item 2 of issue 24 (unprivileged: root writes anywhere)."""
        ro = unprivileged.dir / "ro"
        ro.mkdir(mode=0o555)
        ro.chmod(0o555)
        import shutil
        shutil.copy(synth, unprivileged.dir / "out.h5")
        shutil.copytree(f"{synth}.parts", unprivileged.dir / "out.h5.parts")
        r = unprivileged.cli("preview", unprivileged.dir / "out.h5", "-o", ro / "s.png")
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip() == f"error: {ro / 's.png'}: cannot write in {ro} (Permission denied)"

    def test_output_folder_missing(self, synth: Path, tmp_path: Path) -> None:
        r = run(synth, "-o", tmp_path / "no" / "s.png")
        assert r.exit_code == 2 and "s.png: cannot write the PNG" in r.stderr
