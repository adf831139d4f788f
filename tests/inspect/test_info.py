"""facekit.inspect.info: file_info (JSON-ready dict) and format_info (text)."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from facekit.errors import NotAFacekitFileError
from facekit.inspect import file_info, format_info
from facekit.split import create_folds
from facekit.testing import make_synthetic_file

TOP_KEYS = {"info_version", "path", "schema", "schema_version", "facekit_version", "dataset", "created", "augment",
            "counts", "samples_image", "faces_image", "face_box", "patch_size", "storage", "classes", "subjects",
            "folds", "config", "rejects", "warnings", "face_data"}


class TestFileInfo:
    def test_documented_keys_and_json(self, gray_file: Path) -> None:
        info = file_info(gray_file)
        assert set(info) == TOP_KEYS
        assert info["info_version"] == 1 and info["schema"] == "facekit/faces" and info["schema_version"] == 2
        assert json.loads(json.dumps(info)) == info

    def test_counts(self, gray_file: Path) -> None:
        info = file_info(gray_file)
        assert info["counts"] == {"samples": 24, "faces": 24, "subjects": 4, "sequences": 24, "classes": 3,
                                  "rejects": 5}
        assert info["dataset"] == "testset" and info["augment"] == "none"
        assert [(c["label"], c["name"], c["samples"], c["faces"], c["subjects"]) for c in info["classes"]] == [
            (0, "anger", 8, 8, 4), (1, "happy", 8, 8, 4), (2, "surprise", 8, 8, 4)]
        assert [s["name"] for s in info["subjects"]] == ["S0", "S1", "S2", "S3"]
        assert info["subjects"][0] == {"name": "S0", "samples": 6, "faces": 6, "fold": None,
                                       "samples_per_class": {"anger": 2, "happy": 2, "surprise": 2}}

    def test_images(self, gray_file: Path, tmp_path: Path, facekit_file) -> None:
        info = file_info(gray_file)
        assert info["samples_image"] == {"shape": [24, 40, 40], "dtype": "uint8", "channels": 1}
        assert info["faces_image"] == {"shape": [24, 40, 40], "dtype": "uint8", "channels": 1}
        assert info["face_box"] == [4, 4, 32] and info["patch_size"] == 24
        colour = facekit_file(tmp_path / "c.h5", [("A", 0), ("B", 1)], ["x", "y"], color=True, augment="paper")
        info = file_info(colour)
        assert info["samples_image"] == {"shape": [60, 24, 24, 3], "dtype": "uint8", "channels": 3}
        assert info["augment"] == "paper"

    def test_storage(self, gray_file: Path) -> None:
        st = file_info(gray_file)["storage"]
        assert st["file_bytes"] == gray_file.stat().st_size
        assert st["part_files"] == 1 and st["parts_folder"] == "gray.h5.parts" and st["parts_bytes"] > 0

    def test_rejects_grouped_by_reason(self, gray_file: Path) -> None:
        rj = file_info(gray_file)["rejects"]
        assert rj["count"] == 5
        assert [(g["reason"], g["count"]) for g in rj["by_reason"]] == [("no face found", 4),
                                                                         ("cannot be decoded", 1)]
        assert rj["by_reason"][0]["examples"] == ["raw/x0.png", "raw/x1.png", "raw/x2.png"]
        assert file_info(gray_file, verbose=True)["rejects"]["by_reason"][0]["examples"] == [
            f"raw/x{i}.png" for i in range(4)]

    def test_config(self, gray_file: Path) -> None:
        assert file_info(gray_file)["config"] == {"dataset": "testset", "augment": "none", "options": {"x": 1}}

    def test_folds(self, gray_file: Path) -> None:
        assert file_info(gray_file)["folds"] is None
        a = create_folds(gray_file, k=2, seed=4)
        info = file_info(gray_file)
        folds = info["folds"]
        assert (folds["k"], folds["seed"], folds["method"], folds["created"]) == (2, 4, a.method, a.created)
        assert [f["samples"] for f in folds["folds"]] == a.samples_per_fold.tolist()
        assert sum(len(f["subjects"]) for f in folds["folds"]) == 4 and folds["split_subjects"] == []
        assert sum(f["samples_per_class"]["happy"] for f in folds["folds"]) == 8
        assert [s["fold"] for s in info["subjects"]] == a.subject_fold.tolist()

    def test_unreadable_folds_are_reported_not_raised(self, gray_file: Path) -> None:
        with h5py.File(gray_file, "r+") as h5:
            h5.create_group("folds")["fold"] = np.zeros(3, np.int16)
        info = file_info(gray_file)
        assert "/folds/fold has 3 entries" in info["folds"]["error"]
        assert info["warnings"][0].startswith("folds unreadable: ")
        assert "folds       unreadable: " in format_info(info)

    def test_no_warnings_normally(self, gray_file: Path) -> None:
        create_folds(gray_file, k=2)
        assert file_info(gray_file)["warnings"] == []
        assert "WARNING" not in format_info(file_info(gray_file))

    def test_warns_about_subjects_split_across_folds(self, gray_file: Path) -> None:
        with h5py.File(gray_file, "r+") as h5:
            h5.create_group("folds")["fold"] = (np.arange(24) % 2).astype(np.int16)
        info = file_info(gray_file)
        assert info["folds"]["split_subjects"] == ["S0", "S1", "S2", "S3"]
        assert info["warnings"] == ["4 subject(s) have samples in more than one fold (e.g. S0); make the folds "
                                    "again with `facekit folds --force`"]

    def test_warns_about_folder_files_without_subject_ids(self, gray_file: Path) -> None:
        with h5py.File(gray_file, "r+") as h5:
            h5.attrs["config"] = json.dumps({"dataset": "folder", "options": {"subject_regex": None}})
        info = file_info(gray_file)
        assert info["warnings"][0].startswith("no subject ids: prepared with the folder adapter without "
                                              "--subject-regex")
        assert format_info(info).splitlines()[-1].startswith("WARNING: no subject ids")

    def test_unlabelled_class(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "u.h5", [("A", 0), ("A", -1), ("B", -1)], ["x"])
        classes = file_info(p)["classes"]
        assert [(c["label"], c["name"], c["samples"]) for c in classes] == [(0, "x", 1), (-1, "unlabelled", 2)]

    def test_accepts_synthetic_files(self, tmp_path: Path) -> None:
        info = file_info(make_synthetic_file(tmp_path / "s.h5", augment="paper"))
        assert info["counts"]["samples"] == 20 * info["counts"]["faces"]

    @pytest.mark.parametrize("content", ["h5", "text", "missing"])
    def test_refuses_non_facekit_files(self, tmp_path: Path, content: str) -> None:
        p = tmp_path / "x.h5"
        if content == "h5":
            h5py.File(p, "w").close()
        elif content == "text":
            p.write_text("not hdf5")
        with pytest.raises(NotAFacekitFileError, match=r"x\.h5: "):
            file_info(p)


class TestFormatInfo:
    def test_summary(self, gray_file: Path) -> None:
        text = format_info(file_info(gray_file))
        lines = text.splitlines()
        assert lines[0].startswith(f"{gray_file}: facekit/faces v2, written by facekit")
        assert "face data   no head pose or blendshapes (prepared with pose_blendshapes=False)" in lines
        assert "samples     24  (40x40 uint8 grayscale; augment none, 1 per face)" in lines
        assert "subjects    4  (samples per subject: min 6, median 6, max 6)" in lines
        assert "  happy           8  33.3%      8         4" in lines
        assert "folds       none (make them with `facekit folds FILE --k 10`)" in lines
        assert "  options       x=1" in lines
        assert "subject  fold" not in text  # per-subject table only with verbose

    def test_face_data(self, gray_file: Path, tmp_path: Path) -> None:
        from facekit.store import FaceRecord, PartWriter, assemble
        info = file_info(gray_file)
        assert info["face_data"] == {"pose": False, "blendshapes": False}
        with h5py.File(gray_file, "r+") as f:                 # as facekit wrote it before schema 2
            f.attrs["schema_version"] = 1
        assert "face data   no head pose or blendshapes (a schema-1 file; prepare again to add them)" in \
            format_info(file_info(gray_file)).splitlines()
        part = tmp_path / "pose.h5.parts" / "part-0.h5"
        with PartWriter(part, sample_shape=(20, 20), canvas_shape=(20, 20), samples_are_faces=True,
                        face_data=True) as w:
            for i in range(3):
                w.add_face(FaceRecord(source=f"{i}.png", subject=f"S{i}", sequence=f"S{i}/0", label=0, frame=0,
                                      image=np.zeros((20, 20), np.uint8), landmarks=np.zeros((478, 2), np.float32),
                                      matrix=np.eye(2, 3), samples=np.zeros((1, 20, 20), np.uint8),
                                      sample_landmarks=np.zeros((1, 68, 2), np.float32), patch=np.array([-1]),
                                      angle=np.zeros(1), flip=np.zeros(1), pose=np.array([1.0, 2.0, 3.0]),
                                      blendshapes=np.full(52, 0.5)))
        assemble(tmp_path / "pose.h5", [part], dataset="x", label_names=["a"], config={})
        info = file_info(tmp_path / "pose.h5")
        assert info["face_data"] == {"pose": True, "blendshapes": True}
        assert ("face data   head pose (faces/pose: pitch, yaw, roll) and 52 blendshapes (faces/blendshapes) for "
                "each of the 3 faces") in format_info(info).splitlines()

    def test_rejects_examples_then_all_with_verbose(self, gray_file: Path) -> None:
        text = format_info(file_info(gray_file))
        assert "rejects     5" in text and "      4  no face found" in text
        assert "raw/x2.png" in text and "raw/x3.png" not in text
        assert "... 1 more (--verbose lists all)" in text
        verbose = format_info(file_info(gray_file, verbose=True), verbose=True)
        assert "raw/x3.png" in verbose and "more (--verbose" not in verbose

    def test_folds_and_subject_table(self, gray_file: Path) -> None:
        create_folds(gray_file, k=2, seed=0)
        text = format_info(file_info(gray_file, verbose=True), verbose=True)
        assert "folds       2 (StratifiedGroupKFold, seed 0, created" in text
        assert any(line.split()[:4] == ["fold", "subjects", "samples", "anger"] for line in text.splitlines())
        assert any(line.split()[:5] == ["subject", "fold", "samples", "faces", "anger"]
                   for line in text.splitlines())

    def test_colour(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "c.h5", [("A", 0)], ["x"], color=True)
        assert "40x40 uint8 RGB" in format_info(file_info(p))
