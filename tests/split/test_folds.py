"""facekit.split: subject-disjoint stratified folds, stored atomically."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from facekit.errors import NotAFacekitFileError, OutputExistsError
from facekit.split import (METHOD_LOSO, METHOD_SGKF, FoldAssignment, FoldsError, create_folds,
                           export_folds_csv, make_folds, read_folds, stratified_subject_folds, write_folds)
from facekit.store import open_facekit
from facekit.testing import make_synthetic_file


def _columns(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open_facekit(path) as f:
        return f.column("samples/subject"), f.column("samples/label")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return make_synthetic_file(tmp_path / "out.h5", n_subjects=8, augment="paper")


class TestMakeFolds:
    def test_no_subject_in_two_folds(self, imbalanced_file: Path) -> None:
        a = make_folds(imbalanced_file, k=5, seed=0)
        subj, _ = _columns(imbalanced_file)
        for s in np.unique(subj):
            assert np.unique(a.fold[subj == s]).size == 1
        assert a.split_subjects == []
        assert sorted(sum(a.subjects_per_fold, [])) == sorted(set(a.subjects))

    def test_every_sample_assigned_and_no_fold_empty(self, imbalanced_file: Path) -> None:
        a = make_folds(imbalanced_file, k=5, seed=0)
        subj, _ = _columns(imbalanced_file)
        assert a.fold.shape == subj.shape and a.fold.dtype == np.int16
        assert a.fold.min() == 0 and a.fold.max() == 4
        assert (np.bincount(a.fold, minlength=5) > 0).all()
        assert a.method == METHOD_SGKF and a.k == 5 and a.seed == 0

    def test_counts_match_the_file(self, imbalanced_file: Path) -> None:
        a = make_folds(imbalanced_file, k=4, seed=1)
        _, label = _columns(imbalanced_file)
        assert a.class_names == ["neutral", "happy", "sad", "fear"]
        assert a.class_counts.sum(axis=0).tolist() == np.bincount(label, minlength=4).tolist()
        assert a.samples_per_fold.tolist() == np.bincount(a.fold, minlength=4).tolist()
        assert a.class_proportions.sum(axis=1) == pytest.approx(np.ones(4))

    def test_stratified(self, imbalanced_file: Path) -> None:
        # 24 subjects of 1-6 faces, classes 43/33/17/7 %: measured <= 11 points for seeds 0-4.
        for seed in range(5):
            dev, _, _ = make_folds(imbalanced_file, k=5, seed=seed).max_deviation()
            assert dev <= 0.12

    def test_reproducible_with_seed(self, imbalanced_file: Path) -> None:
        a, b = make_folds(imbalanced_file, 5, seed=7), make_folds(imbalanced_file, 5, seed=7)
        assert np.array_equal(a.fold, b.fold)
        others = [make_folds(imbalanced_file, 5, seed=s).fold for s in range(1, 5)]
        assert any(not np.array_equal(a.fold, o) for o in others)

    def test_augmented_copies_do_not_change_the_folds(self, tmp_path: Path, structured_file) -> None:
        faces = [(f"P{s}", (s * 3 + j) % 4 if s % 3 else 0) for s in range(12) for j in range(1 + s % 4)]
        one = structured_file(tmp_path / "one.h5", faces, list("abcd"), samples_per_face=1)
        many = structured_file(tmp_path / "many.h5", faces, list("abcd"), samples_per_face=6)
        for seed in range(3):
            assert np.array_equal(make_folds(one, 4, seed).subject_fold, make_folds(many, 4, seed).subject_fold)

    def test_k_equal_to_subjects_is_leave_one_subject_out(self, synth: Path) -> None:
        a = make_folds(synth, k=8, seed=3)
        assert a.method == METHOD_LOSO
        assert a.subject_fold.tolist() == list(range(8))
        assert all(len(s) == 1 for s in a.subjects_per_fold)
        text = a.format_table()
        assert "LeaveOneSubjectOut" in text and "largest deviation" not in text and "note:" not in text
        assert text.splitlines()[-1].startswith("leave-one-subject-out: each fold is one subject")

    def test_accepts_an_open_file(self, synth: Path) -> None:
        with open_facekit(synth) as f:
            a = make_folds(f, k=4)
            assert f.h5.id.valid  # not closed behind the caller's back
        assert isinstance(a, FoldAssignment)

    def test_unlabelled_samples_are_a_class_listed_last(self, tmp_path: Path, structured_file) -> None:
        faces = [(f"P{s}", -1 if s % 3 == 0 else s % 2) for s in range(9) for _ in range(2)]
        p = structured_file(tmp_path / "u.h5", faces, ["a", "b"])
        a = make_folds(p, k=3)
        assert a.class_names == ["a", "b", "unlabelled"]
        assert a.class_counts.sum(axis=0).tolist() == [6, 6, 6]

    def test_sparse_class_is_noted(self, tmp_path: Path, structured_file) -> None:
        faces = [(f"P{s}", 1 if s == 0 else 0) for s in range(6)]
        a = make_folds(structured_file(tmp_path / "s.h5", faces, ["common", "rare"]), k=3)
        assert a.sparse_classes() == [("rare", 1)]
        assert "note: rare is held by 1 subject(s) only" in a.format_table()

    def test_table_lists_folds_and_classes(self, synth: Path) -> None:
        text = make_folds(synth, k=4).format_table()
        lines = text.splitlines()
        assert lines[0].startswith("4 folds (StratifiedGroupKFold, seed 0) over 8 subjects")
        assert lines[1].split() == ["fold", "subjects", "samples", "class0", "class1", "class2"]
        assert any(line.split()[0] == "all" for line in lines)
        assert "largest deviation" in lines[-1]


class TestStratifiedSubjectFolds:
    def test_subject_disjoint_and_stratified(self) -> None:
        rng = np.random.default_rng(0)
        subj = np.repeat(np.arange(2, 22), 6)                 # subjects 2..21 (0 and 1 absent)
        cls = rng.integers(0, 3, len(subj))
        f = stratified_subject_folds(subj, cls, 4, seed=1)
        assert f.shape == (22,) and (f[:2] == -1).all() and set(f[2:].tolist()) == {0, 1, 2, 3}
        per_sample = f[subj]
        share = np.array([[np.mean(cls[per_sample == k] == c) for c in range(3)] for k in range(4)])
        overall = np.array([np.mean(cls == c) for c in range(3)])
        assert np.abs(share - overall).max() < 0.2
        np.testing.assert_array_equal(f, stratified_subject_folds(subj, cls, 4, seed=1))


class TestMakeFoldsRefusals:
    @pytest.mark.parametrize("k", [1, 0, -3])
    def test_k_below_two(self, synth: Path, k: int) -> None:
        with pytest.raises(FoldsError, match=r"out\.h5: k must be at least 2"):
            make_folds(synth, k=k)

    def test_k_not_an_integer(self, synth: Path) -> None:
        with pytest.raises(FoldsError, match="k must be an integer"):
            make_folds(synth, k=2.5)  # type: ignore[arg-type]

    def test_k_larger_than_subjects(self, synth: Path) -> None:
        with pytest.raises(FoldsError) as e:
            make_folds(synth, k=9)
        msg = str(e.value)
        assert "out.h5" in msg and "k=9" in msg and "(8)" in msg and "leave-one-subject-out" in msg

    def test_not_a_facekit_file(self, tmp_path: Path) -> None:
        other = tmp_path / "other.h5"
        with h5py.File(other, "w") as h5:
            h5["x"] = np.zeros(3)
        with pytest.raises(NotAFacekitFileError, match="other.h5: not a facekit file"):
            make_folds(other, k=2)

    def test_not_hdf5(self, tmp_path: Path) -> None:
        txt = tmp_path / "notes.h5"
        txt.write_text("hello")
        with pytest.raises(NotAFacekitFileError, match="notes.h5: not an HDF5 file"):
            make_folds(txt, k=2)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(NotAFacekitFileError, match="missing.h5: file does not exist"):
            make_folds(tmp_path / "missing.h5", k=2)

    def test_no_subject_ids(self, tmp_path: Path, structured_file) -> None:
        p = structured_file(tmp_path / "anon.h5", [("", i % 2) for i in range(6)], ["a", "b"])
        with pytest.raises(FoldsError, match=r"anon\.h5: has no subject ids"):
            make_folds(p, k=2)

    def test_folder_adapter_without_subject_regex(self, synth: Path) -> None:
        with h5py.File(synth, "r+") as h5:  # what `prepare folder ROOT OUT` (no --subject-regex) stores
            h5.attrs["config"] = json.dumps({"dataset": "folder", "options": {"subject_regex": None}})
        with pytest.raises(FoldsError) as e:
            make_folds(synth, k=2)
        assert "out.h5: has no subject ids" in str(e.value) and "--subject-regex" in str(e.value)

    def test_no_subject_column(self, synth: Path) -> None:
        with h5py.File(synth, "r+") as h5:
            del h5["samples/subject"]
        with pytest.raises(FoldsError, match=r"out\.h5: has no subject ids \(no samples/subject column\)"):
            make_folds(synth, k=2)

    def test_invalid_subject_index(self, synth: Path) -> None:
        with h5py.File(synth, "r+") as h5:
            h5["samples/subject"][:3] = -1
        with pytest.raises(FoldsError, match=r"out\.h5: 3 sample\(s\) have no valid subject id"):
            make_folds(synth, k=2)

    def test_no_samples(self, tmp_path: Path, structured_file) -> None:
        p = structured_file(tmp_path / "empty.h5", [], ["a"])
        with pytest.raises(FoldsError, match=r"empty\.h5: has no samples"):
            make_folds(p, k=2)


class TestWriteFolds:
    def test_stores_folds_and_attributes(self, synth: Path) -> None:
        a = make_folds(synth, k=4, seed=5)
        write_folds(synth, a)
        with open_facekit(synth) as f:  # still a valid file whose images resolve
            assert f.has_folds and f.folds.dtype == np.int16
            assert np.array_equal(f.folds, a.fold)
            attrs = f.fold_attrs
            assert f.images[0].std() > 0
        assert attrs["k"] == 4 and attrs["seed"] == 5 and attrs["method"] == METHOD_SGKF
        assert attrs["created"] == a.created and attrs["n_samples"] == a.n_samples
        assert json.loads(attrs["subjects"]) == a.subjects_per_fold
        assert json.loads(attrs["class_counts"]) == a.class_counts.tolist()
        assert _leftovers(synth.parent) == []

    def test_existing_folds_need_force(self, synth: Path) -> None:
        write_folds(synth, make_folds(synth, k=4, seed=0))
        before = synth.read_bytes()
        with pytest.raises(OutputExistsError) as e:
            write_folds(synth, make_folds(synth, k=2, seed=0))
        assert "out.h5: already has folds (k=4" in str(e.value) and "--force" in str(e.value)
        assert synth.read_bytes() == before
        write_folds(synth, make_folds(synth, k=2, seed=0), force=True)
        assert read_folds(synth).k == 2

    def test_replacing_folds_reuses_the_column(self, synth: Path) -> None:
        # HDF5 does not reclaim deleted datasets: rewriting /folds/fold in place keeps --force from
        # growing the file by 2 bytes per sample each time
        write_folds(synth, make_folds(synth, k=4, seed=0))
        with h5py.File(synth) as h5:
            offset = h5["folds/fold"].id.get_offset()
        write_folds(synth, make_folds(synth, k=3, seed=1), force=True)
        with h5py.File(synth) as h5:
            assert h5["folds/fold"].id.get_offset() == offset
        assert read_folds(synth).k == 3 and read_folds(synth).seed == 1

    def test_sample_count_mismatch(self, synth: Path, tmp_path: Path) -> None:
        small = make_synthetic_file(tmp_path / "small.h5", n_subjects=4)
        with pytest.raises(FoldsError, match=r"out\.h5: the folds cover 24 samples but the file has"):
            write_folds(synth, make_folds(small, k=2))

    @pytest.mark.parametrize("had_folds", [False, True])
    def test_interrupt_leaves_the_file_untouched(self, synth: Path, monkeypatch, had_folds: bool) -> None:
        if had_folds:
            write_folds(synth, make_folds(synth, k=4, seed=0))
        before = synth.read_bytes()
        old = read_folds(synth)
        a = make_folds(synth, k=2, seed=1)

        def interrupted(self: FoldAssignment) -> dict:  # called after /folds/fold was written to the copy
            raise KeyboardInterrupt

        monkeypatch.setattr(FoldAssignment, "attrs", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_folds(synth, a, force=True)
        assert synth.read_bytes() == before
        assert _leftovers(synth.parent) == []
        with open_facekit(synth) as f:
            assert f.has_folds is had_folds
        if had_folds:
            assert np.array_equal(read_folds(synth).fold, old.fold)

    def test_interrupt_at_rename(self, synth: Path, monkeypatch) -> None:
        before = synth.read_bytes()
        a = make_folds(synth, k=2)

        def no_rename(*args: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "replace", no_rename)
        with pytest.raises(KeyboardInterrupt):
            write_folds(synth, a)
        assert synth.read_bytes() == before and _leftovers(synth.parent) == []

    def test_keeps_file_mode(self, synth: Path) -> None:
        synth.chmod(0o640)
        write_folds(synth, make_folds(synth, k=2))
        assert synth.stat().st_mode & 0o777 == 0o640

    def test_refuses_non_facekit_file(self, tmp_path: Path, synth: Path) -> None:
        other = tmp_path / "other.h5"
        with h5py.File(other, "w"):
            pass
        with pytest.raises(NotAFacekitFileError, match="other.h5"):
            write_folds(other, make_folds(synth, k=2))


class TestReadFolds:
    def test_none_without_folds(self, synth: Path) -> None:
        assert read_folds(synth) is None

    def test_round_trip(self, synth: Path) -> None:
        a = make_folds(synth, k=4, seed=2)
        write_folds(synth, a)
        b = read_folds(synth)
        assert np.array_equal(a.fold, b.fold) and np.array_equal(a.subject_fold, b.subject_fold)
        assert (b.k, b.seed, b.method, b.created) == (4, 2, METHOD_SGKF, a.created)
        assert np.array_equal(a.class_counts, b.class_counts)

    def test_reports_subjects_split_by_another_tool(self, synth: Path) -> None:
        with h5py.File(synth, "r+") as h5:  # naive per-sample folds, as another tool might write
            g = h5.create_group("folds")
            g["fold"] = (np.arange(h5["samples/face"].shape[0]) % 3).astype(np.int16)
            g.attrs["k"] = 3
        a = read_folds(synth)
        assert len(a.split_subjects) == 8 and a.method == "unknown"
        assert "WARNING: subject S000 has samples in more than one fold" in a.format_table()

    def test_wrong_length(self, synth: Path) -> None:
        with h5py.File(synth, "r+") as h5:
            h5.create_group("folds")["fold"] = np.zeros(5, np.int16)
        with pytest.raises(FoldsError, match=r"out\.h5: /folds/fold has 5 entries"):
            read_folds(synth)


class TestExportCsv:
    def test_subject_to_fold(self, synth: Path, tmp_path: Path) -> None:
        a = make_folds(synth, k=4, seed=0)
        out = export_folds_csv(a, tmp_path / "folds.csv")
        rows = list(csv.DictReader(out.open()))
        assert list(rows[0]) == ["subject", "fold", "samples"]
        assert [r["subject"] for r in rows] == a.subjects
        assert [int(r["fold"]) for r in rows] == a.subject_fold.tolist()
        assert sum(int(r["samples"]) for r in rows) == a.n_samples

    def test_missing_folder(self, synth: Path, tmp_path: Path) -> None:
        with pytest.raises(FoldsError, match="folds.csv: cannot write the CSV: folder .*nowhere does not exist"):
            export_folds_csv(make_folds(synth, k=2), tmp_path / "nowhere" / "folds.csv")


class TestCreateFolds:
    def test_makes_stores_and_exports(self, synth: Path, tmp_path: Path) -> None:
        a = create_folds(synth, k=4, seed=1, export=tmp_path / "f.csv")
        assert np.array_equal(read_folds(synth).fold, a.fold)
        assert (tmp_path / "f.csv").read_text().startswith("subject,fold,samples\n")

    def test_bad_export_folder_writes_nothing(self, synth: Path, tmp_path: Path) -> None:
        before = synth.read_bytes()
        with pytest.raises(FoldsError, match="does not exist"):
            create_folds(synth, k=4, export=tmp_path / "no" / "f.csv")
        assert synth.read_bytes() == before

    def test_refuses_existing_folds_before_anything_else(self, synth: Path) -> None:
        create_folds(synth, k=4)
        with pytest.raises(OutputExistsError, match="pass --force"):
            create_folds(synth, k=99)  # the k error would come second
        assert create_folds(synth, k=2, force=True).k == 2


class TestKilledFolds:
    def test_kill_9_while_writing_leaves_the_file_and_the_next_run_cleans_up(self, synth: Path) -> None:
        """A real ``kill -9`` of ``facekit folds`` after the folds went into the copy: the file is
        untouched; the copy (``FILE.tmp-HOST-PID``) and the lock stay behind until the next run,
        which removes both (issue 24, items 6 and 12)."""
        import signal
        import subprocess
        import sys
        import time
        before = synth.read_bytes()
        release = synth.with_name("release")
        code = ("import time\nfrom pathlib import Path\nfrom facekit.split import folds as F\n"
                "real = F.FoldAssignment.attrs\n"
                "def held(self):\n"
                f"    Path({str(synth.with_name('holding'))!r}).write_text('')\n"
                f"    while not Path({str(release)!r}).exists(): time.sleep(0.02)\n"
                "    return real(self)\n"
                "F.FoldAssignment.attrs = held\n"
                "from cli.facekit import main\n"
                f"main(['folds', {str(synth)!r}, '--k', '4'])\n")
        p = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 120
            while not synth.with_name("holding").exists():
                assert p.poll() is None and time.time() < deadline, p.stderr.read()
                time.sleep(0.02)
        finally:
            os.kill(p.pid, signal.SIGKILL)        # also when the wait failed: nothing left waiting
            p.wait()
        assert synth.read_bytes() == before and read_folds(synth) is None
        left = _leftovers(synth.parent)
        assert len(left) == 1 and left[0].startswith("out.h5.tmp-") and left[0].endswith(f"-{p.pid}")
        assert (synth.parent / "out.h5.lock").exists()
        create_folds(synth, k=4)                                  # takes over the stale lock
        assert read_folds(synth).k == 4
        assert _leftovers(synth.parent) == [] and not (synth.parent / "out.h5.lock").exists()
