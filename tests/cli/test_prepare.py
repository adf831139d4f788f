import json

import pytest
from click.testing import CliRunner

from cli.facekit import main
from facekit.store import open_facekit


@pytest.fixture
def run(model_path, monkeypatch):
    monkeypatch.setenv("FACEKIT_MODEL", str(model_path))

    def invoke(*args):
        return CliRunner().invoke(main, ["prepare", *map(str, args)], catch_exceptions=False)
    return invoke


class TestPrepareCommand:
    def test_quickstart_on_the_ck_fixture(self, run, fixtures_dir, tmp_path):
        r = run("ck+", fixtures_dir / "ck+", tmp_path / "out.h5", "-q")
        assert r.exit_code == 0, r.output
        for line in ("wrote", "8 used", "24 faces aligned", "2640 written", "images/s",
                     "no emotion label"):
            assert line in r.output
        with open_facekit(tmp_path / "out.h5") as f:
            assert f.n_samples == 2640

    def test_json_summary(self, run, fixtures_dir, tmp_path):
        r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "j.h5", "--augment", "none", "--json", "-q")
        s = json.loads(r.output)
        assert s["complete"] and s["faces_aligned"] == 11 and s["samples_written"] == 11

    def test_folder_subject_regex_and_options(self, run, fixtures_dir, tmp_path):
        r = run("folder", fixtures_dir / "folder", tmp_path / "f.h5", "--subject-regex", r"^(S\d+)_",
                "--augment", "none", "-q")
        assert r.exit_code == 0, r.output
        r = run("oulu-casia", fixtures_dir / "oulu-casia", tmp_path / "o.h5", "-O", "modality=NI",
                "--augment", "none", "-q")
        assert r.exit_code == 0, r.output

    @pytest.mark.parametrize("args,message", [
        (("nope", "{fx}/ck+", "{tmp}/o.h5"), "unknown dataset 'nope'"),
        (("ck+", "{fx}/jaffe", "{tmp}/o.h5"), "no cohn-kanade-images/ folder"),
        (("ck+", "{tmp}/missing", "{tmp}/o.h5"), "does not exist"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--subject-regex", "x"), "folder adapter"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "-O", "colour=1"), "has no option 'colour'"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--frames", "peak"), "invalid frame selection"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--shard", "3/2"), "invalid shard"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--resume", "--force"), "exclude each other"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--workers", "0"), "0 is not in the range x>=1"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--part-size", "0"), "0 is not in the range x>=1"),
        (("ck+", "{fx}/ck+", "{tmp}/o.h5", "--landmarker", "a.task", "--model", "b.task"), "disagree"),
    ])
    def test_bad_input_exits_2_with_one_line(self, run, fixtures_dir, tmp_path, args, message):
        r = run(*(a.format(fx=fixtures_dir, tmp=tmp_path) for a in args))
        assert r.exit_code == 2
        assert message in r.output and "Traceback" not in r.output
        assert not (tmp_path / "o.h5").exists()

    def test_existing_output(self, run, fixtures_dir, tmp_path):
        args = ("jaffe", fixtures_dir / "jaffe", tmp_path / "j.h5", "--augment", "none", "-q")
        assert run(*args).exit_code == 0
        r = run(*args)
        assert r.exit_code == 2 and "--force" in r.output
        assert run(*args, "--force").exit_code == 0

    def test_nothing_usable_exits_1(self, run, tmp_path):
        import cv2
        import numpy as np
        (tmp_path / "d" / "happy").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "d" / "happy" / "S1_1.png"), np.zeros((64, 64), np.uint8))
        r = run("folder", tmp_path / "d", tmp_path / "o.h5", "--subject-regex", r"^(S\d+)_", "-q")
        assert r.exit_code == 1 and "no face could be aligned" in r.output

    def test_model_of_random_bytes_is_refused_by_name(self, run, fixtures_dir, tmp_path):
        """Item 11 of issue 24: no MediaPipe traceback."""
        bad = tmp_path / "random.task"
        bad.write_bytes(bytes(range(256)) * 100)
        for opt in ("--landmarker", "--model"):
            r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "o.h5", opt, bad, "-q")
            assert r.exit_code == 2 and "Traceback" not in r.output
            assert r.output.strip() == (f"error: {bad}: not a MediaPipe .task model (not a zip archive, 25600 bytes); "
                                        "expected a MediaPipe .task model such as face_landmarker.task "
                                        "(https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                                        "face_landmarker/float16/1/face_landmarker.task)")
            assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.lock").exists()

    def test_landmarker_option_and_its_hidden_alias(self, run, fixtures_dir, tmp_path, model_path):
        r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "a.h5", "--landmarker", model_path, "--augment", "none",
                "-q")
        assert r.exit_code == 0, r.output
        r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "b.h5", "--model", model_path, "--augment", "none", "-q")
        assert r.exit_code == 0, r.output
        help_text = CliRunner().invoke(main, ["prepare", "--help"]).output
        assert "--landmarker" in help_text and "--model" not in help_text and "--max-pixels" in help_text

    @pytest.mark.parametrize("args,message", [
        (("--face-size", "5000"), "5000 is not in the range 16<=x<=1024"),
        (("--max-pixels", "lots"), "invalid pixel count 'lots'"),
        (("--max-pixels", "0"), "must be at least 1"),
    ])
    def test_limits_are_checked(self, run, fixtures_dir, tmp_path, args, message):
        """Item 13 of issue 24."""
        r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "o.h5", *args, "-q")
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output

    def test_parts_folder_that_is_a_file(self, run, fixtures_dir, tmp_path):
        """Item 11 of issue 24."""
        (tmp_path / "o.h5.parts").write_text("x")
        r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "o.h5", "-q")
        assert r.exit_code == 2
        assert r.output.strip().splitlines() == [f"error: {tmp_path}/o.h5.parts: exists but is not a folder (the part "
                                                 "files of OUT go there); move it away or choose another OUT"]

    def test_model_missing_says_where_to_put_it(self, run, fixtures_dir, tmp_path):
        r = run("jaffe", fixtures_dir / "jaffe", tmp_path / "o.h5", "--model", tmp_path / "nope.task")
        assert r.exit_code == 2 and "nope.task does not exist" in r.output


class TestTerminal:
    def test_only_progress_and_summary(self, model_path, fixtures_dir, tmp_path):
        """Two worker processes, a real terminal-like run: no MediaPipe/TFLite log lines, no
        complaints at exit; stderr holds only the progress bar."""
        import subprocess
        import sys
        cmd = [sys.executable, "-m", "cli", "prepare", "ck+", str(fixtures_dir / "ck+"), str(tmp_path / "o.h5"),
               "--workers", "2", "--part-size", "6", "--model", str(model_path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("wrote ")
        for noise in ("W0000", "INFO:", "WARNING", "Exception ignored", "Traceback", "XNNPACK"):
            assert noise not in r.stderr
        bar = [seg for seg in r.stderr.replace("\r", "\n").splitlines() if seg.strip()]
        assert bar and all("img" in seg for seg in bar)
        quiet = subprocess.run(cmd + ["--force", "-q"], capture_output=True, text=True, timeout=300)
        assert quiet.returncode == 0 and quiet.stderr == ""
