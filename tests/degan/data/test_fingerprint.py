from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from degan.data import read_file_info
from degan.data.fingerprint import (DataFingerprint, data_fingerprint, fingerprint_mismatch, fold_map,
                                    recorded_fingerprint)

from ..conftest import add_folds, copy_file, make_file


class TestDataFingerprint:
    def test_what_it_holds(self, canvas_file: Path, no_folds_file: Path) -> None:
        fp = data_fingerprint(canvas_file)
        info = read_file_info(canvas_file)
        assert fp.samples == info.n_samples == 36 and fp.label_names == tuple(info.label_names)
        assert len(fp.file) == 64 and fp.folds is not None and len(fp.folds) == 64
        assert fp.path == str(canvas_file.resolve())
        assert data_fingerprint(info) == fp                          # from a FileInfo too
        assert data_fingerprint(no_folds_file).folds is None

    def test_a_copy_under_another_name_matches(self, canvas_file: Path, tmp_path: Path) -> None:
        copy = copy_file(canvas_file, tmp_path / "other" / "renamed.h5")
        a, b = data_fingerprint(canvas_file), data_fingerprint(copy)
        assert a.differences(b) == [] and a.path != b.path
        assert fingerprint_mismatch(a, b) is None

    def test_refolded_file_differs_in_its_folds_only(self, canvas_file: Path, tmp_path: Path) -> None:
        refolded = add_folds(copy_file(canvas_file, tmp_path / "refolded.h5"), 2)
        a, b = data_fingerprint(canvas_file), data_fingerprint(refolded)
        assert a.differences(b) == [f"folds differ (subject->fold sha {a.folds[:8]} recorded, "   # type: ignore[index]
                                    f"{b.folds[:8]} now)"]                                           # type: ignore[index]

    def test_a_file_prepared_again_differs(self, tmp_path: Path) -> None:
        a = data_fingerprint(make_file(tmp_path / "a.h5"))
        b = data_fingerprint(make_file(tmp_path / "b.h5", n_subjects=5))
        diffs = a.differences(b)
        assert diffs[0].startswith("file content differs (sha ") and diffs[1] == "sample count differs (36 recorded, 30 now)"
        renamed = data_fingerprint(make_file(tmp_path / "c.h5", label_names=["x", "y", "z"]))
        assert "label names differ (class0,class1,class2 recorded, x,y,z now)" in a.differences(renamed)

    def test_mismatch_names_both_files(self, canvas_file: Path, tmp_path: Path) -> None:
        other = make_file(tmp_path / "other.h5", n_classes=2)
        msg = fingerprint_mismatch(data_fingerprint(canvas_file), data_fingerprint(other), "pre-trained")
        assert msg is not None and msg.startswith(f"{other.resolve()} is not the data it was pre-trained on "
                                                  f"({canvas_file.resolve()}): file content differs")
        assert "\n" not in msg

    def test_round_trip_and_malformed(self, canvas_file: Path) -> None:
        fp = data_fingerprint(canvas_file)
        assert DataFingerprint.from_dict(fp.to_dict()) == fp
        assert recorded_fingerprint({"fingerprint": fp.to_dict()}) == fp
        assert recorded_fingerprint({}) is None and recorded_fingerprint(None) is None
        with pytest.raises(ValueError, match="malformed data fingerprint"):
            DataFingerprint.from_dict({"file": "x"})

    def test_fold_map(self) -> None:
        subject = np.array([0, 0, 1, 2, 2])
        fold = np.array([1, 1, 0, 1, 2])
        assert fold_map(["s1", "s2", "s3"], subject, fold) == {"s1": [1], "s2": [0], "s3": [1, 2]}
