import dataclasses
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from facekit.errors import DamagedPartError, NotAFacekitFileError
from facekit.store import (FaceRecord, PartWriter, StorageOptions, assemble, open_facekit,
                           read_part_contents, read_part_meta, schema, verify_parts)
from facekit.testing import make_synthetic_file


def _record(i: int, k: int = 3, subject: str = "S1", label: int = 0) -> FaceRecord:
    return FaceRecord(source=f"src/{i}.png", subject=subject, sequence=f"{subject}/{i}", label=label, frame=i,
                      image=np.full((20, 20), i, np.uint8), landmarks=np.zeros((478, 2), np.float32),
                      matrix=np.eye(2, 3), samples=np.full((k, 16, 16), i, np.uint8),
                      sample_landmarks=np.zeros((k, 68, 2), np.float32), patch=np.arange(k) % 5,
                      angle=np.zeros(k), flip=np.arange(k) % 2)


def _part(path, records, rejects=()):
    with PartWriter(path, sample_shape=(16, 16), canvas_shape=(20, 20), storage=StorageOptions(8)) as w:
        for r in records:
            w.add_face(r)
        for p, reason in rejects:
            w.add_reject(p, reason)
    return path


class TestPartWriter:
    def test_finished_part_has_columns(self, tmp_path):
        p = _part(tmp_path / "p.h5", [_record(0), _record(1, k=2)], [("bad.png", "no face found")])
        with h5py.File(p) as f:
            assert f.attrs["facekit_schema"] == schema.PART_SCHEMA_NAME
            assert f.attrs["part_version"] == schema.PART_VERSION
            assert f["samples/image"].shape == (5, 16, 16)
            assert f["samples/index"]["face"].tolist() == [0, 0, 0, 1, 1]
            assert f["faces/image"].shape == (2, 20, 20)
            assert f["faces/index"]["matrix"].shape == (2, 2, 3)
            assert f["faces/names"].shape == (2, 3)
            assert f["rejects"][()].tolist() == [[b"bad.png", b"no face found"]]
        meta = read_part_meta(p)
        assert (meta["n_faces"], meta["n_samples"], meta["samples_image"]) == (2, 5, "samples/image")

    def test_numpy_attributes_round_trip_through_the_metadata(self, tmp_path):
        with PartWriter(tmp_path / "p.h5", sample_shape=(16, 16), canvas_shape=(20, 20),
                        attrs={"part_index": np.int64(3), "box": np.array([1, 2]), "name": "x"}) as w:
            w.add_face(_record(0))
        meta = read_part_meta(tmp_path / "p.h5")
        assert (meta["part_index"], meta["box"], meta["name"]) == (3, [1, 2], "x")
        with pytest.raises(TypeError, match="cannot store object"):
            with PartWriter(tmp_path / "q.h5", sample_shape=(16, 16), canvas_shape=(20, 20),
                            attrs={"bad": object()}):
                pass
        assert not (tmp_path / "q.h5").exists()

    def test_part_of_another_format_is_not_reused(self, tmp_path):
        """A part written by another part format reads as unfinished (``--resume`` rewrites it)
        and assembling it fails with a message that names it."""
        p = _part(tmp_path / "p.h5", [_record(0)], [])
        with h5py.File(p, "a") as f:
            f.attrs["part_version"] = schema.PART_VERSION - 1
        assert read_part_meta(p) == {}
        with pytest.raises(NotAFacekitFileError, match="p.h5.*another facekit version"):
            read_part_contents(p)

    def test_exception_leaves_no_file(self, tmp_path):
        with pytest.raises(ValueError):
            with PartWriter(tmp_path / "p.h5", sample_shape=(16, 16), canvas_shape=(20, 20)) as w:
                w.add_face(_record(0))
                raise ValueError("worker failed")
        assert list(tmp_path.iterdir()) == []

    def test_wrong_sample_shape(self, tmp_path):
        with pytest.raises(ValueError, match="sample shape"):
            with PartWriter(tmp_path / "p.h5", sample_shape=(8, 8), canvas_shape=(20, 20)) as w:
                w.add_face(_record(0))

    def test_direct_chunks_round_trip_and_extent_is_trimmed(self, tmp_path):
        # chunk of 4 samples == samples per face: every face goes through the direct-chunk path,
        # whose extent grows geometrically (4, 8, 16, 32) and must be trimmed to 7 faces at close
        recs = [_record(i, k=4) for i in range(7)]
        with PartWriter(tmp_path / "p.h5", sample_shape=(16, 16), canvas_shape=(20, 20),
                        storage=StorageOptions(4)) as w:
            for r in recs:
                w.add_face(r)
        with h5py.File(tmp_path / "p.h5") as f:
            img = f["samples/image"]
            assert img.shape == (28, 16, 16) and img.chunks == (4, 16, 16)
            assert img[:, 0, 0].tolist() == [i for i in range(7) for _ in range(4)]
            assert f["samples/index"]["face"].tolist() == [i for i in range(7) for _ in range(4)]
            assert f["samples/index"]["patch"].tolist() == [0, 1, 2, 3] * 7
            assert f["samples/landmarks"].shape == (28, 68, 2)
            assert f["faces/image"][:, 0, 0].tolist() == list(range(7))
            assert f["faces/index"]["matrix"].shape == (7, 2, 3) and f["faces/landmarks"].shape == (7, 478, 2)
            assert f["faces/index"]["frame"].tolist() == list(range(7))
            assert [s.decode() for s in f["faces/names"][:, 0]] == [f"src/{i}.png" for i in range(7)]
        meta = read_part_meta(tmp_path / "p.h5")
        assert meta["n_faces"] == 7 and meta["n_samples"] == 28

    def test_buffered_canvases_over_several_flushes(self, tmp_path):
        # canvases are buffered and flushed every 16 faces: 40 faces = 16 + 16 + 8 on close,
        # with the extent grown geometrically and trimmed
        p = _part(tmp_path / "p.h5", [_record(i, k=1) for i in range(40)])
        with h5py.File(p) as f:
            assert f["faces/image"].shape == (40, 20, 20)
            assert f["faces/image"][:, 0, 0].tolist() == list(range(40))
            assert f["samples/image"].shape == (40, 16, 16)

    def test_canvas_chunk_shrinks_to_a_small_part(self, tmp_path):
        # --augment none: 3 canvases must not allocate a ~1 MiB chunk of 2621 canvases
        with PartWriter(tmp_path / "p.h5", sample_shape=(20, 20), canvas_shape=(20, 20),
                        samples_are_faces=True) as w:
            for i in range(3):
                w.add_face(dataclasses.replace(_record(i, k=1), samples=np.full((1, 20, 20), i, np.uint8)))
        with h5py.File(tmp_path / "p.h5") as f:
            assert f["faces/image"].chunks == (3, 20, 20)
            assert f["faces/image"].id.get_storage_size() == 3 * 20 * 20
            assert f["faces/image"][:, 0, 0].tolist() == [0, 1, 2]

    def test_part_without_faces(self, tmp_path):
        p = _part(tmp_path / "p.h5", [], [("a.png", "no face found"), ("b.png", "unreadable")])
        assert read_part_meta(p)["n_faces"] == 0
        c = read_part_contents(p)
        assert (c["n_faces"], c["n_samples"], c["faces"]["source"], len(c["samples"]["face"])) == (0, 0, [], 0)
        assert c["rejects"] == [("a.png", "no face found"), ("b.png", "unreadable")]
        with h5py.File(p) as f:
            assert f["samples/image"].shape == (0, 16, 16) and f["faces/image"].shape == (0, 20, 20)
            assert f["samples/landmarks"].shape == (0, 68, 2) and f["faces/index"]["matrix"].shape == (0, 2, 3)
            assert f["faces/names"].shape == (0, 3) and f["rejects"].shape == (2, 2)

    def test_wrong_canvas_shape(self, tmp_path):
        rec = _record(0)
        with pytest.raises(ValueError, match="face image shape"):
            with PartWriter(tmp_path / "p.h5", sample_shape=(16, 16), canvas_shape=(24, 24)) as w:
                w.add_face(rec)
        assert list(tmp_path.iterdir()) == []

    def test_compression_is_applied(self, tmp_path):
        with PartWriter(tmp_path / "p.h5", sample_shape=(16, 16), canvas_shape=(20, 20),
                        storage=StorageOptions(8, "gzip", 1)) as w:
            w.add_face(_record(0))
        with h5py.File(tmp_path / "p.h5") as f:
            assert f["samples/image"].compression == "gzip"


class TestAssemble:
    def test_global_indices_and_virtual_images(self, tmp_path):
        parts = tmp_path / "out.h5.parts"
        p0 = _part(parts / "a.h5", [_record(1, subject="S2"), _record(2, subject="S10", label=1)])
        p1 = _part(parts / "b.h5", [_record(3, subject="S2", label=1)], [("x.png", "no face found")])
        counts = assemble(tmp_path / "out.h5", [p0, p1], dataset="t", label_names=["a", "b"], config={"k": 1},
                          extra_rejects=[("seq/9", "no emotion label")], attrs={"augment": "paper"})
        assert counts["samples"] == 9 and counts["faces"] == 3 and counts["rejects"] == 2
        with open_facekit(tmp_path / "out.h5") as f:
            assert f.h5["samples/image"].is_virtual
            assert f.images[:, 0, 0].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
            assert f.subjects == ["S2", "S10"]                         # natural order
            assert f.column("samples/subject").tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0]
            assert f.column("samples/face").tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
            assert f.column("samples/label").tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
            assert f.column("faces/source").tolist() == ["src/1.png", "src/2.png", "src/3.png"]
            assert f.rejects == [("seq/9", "no emotion label"), ("x.png", "no face found")]
            assert f.label_names == ["a", "b"] and f.config == {"k": 1} and f.augment == "paper"

    def test_file_moves_with_its_parts(self, tmp_path):
        src = make_synthetic_file(tmp_path / "a" / "x.h5")
        shutil.copytree(tmp_path / "a", tmp_path / "b")
        shutil.rmtree(tmp_path / "a")
        with open_facekit(tmp_path / "b" / "x.h5") as f:
            assert f.images[:].std() > 0
        assert not src.exists()

    def test_samples_are_faces_stores_images_once(self, tmp_path):
        parts = tmp_path / "o.h5.parts"
        recs = []
        for i in range(3):
            r = _record(i, k=1)
            r.samples = r.image[None]
            r.sample_landmarks = np.zeros((1, 68, 2), np.float32)
            recs.append(r)
        with PartWriter(parts / "a.h5", sample_shape=(20, 20), canvas_shape=(20, 20),
                        samples_are_faces=True) as w:
            for r in recs:
                w.add_face(r)
        with h5py.File(parts / "a.h5") as f:
            assert "image" not in f["samples"]
        assemble(tmp_path / "o.h5", [parts / "a.h5"], dataset="t", label_names=["a"], config={})
        with open_facekit(tmp_path / "o.h5") as f:
            assert f.images.shape == (3, 20, 20)
            np.testing.assert_array_equal(f.images[:], f.h5["faces/image"][:])
        with pytest.raises(ValueError, match="one sample per face"):
            with PartWriter(parts / "b.h5", sample_shape=(20, 20), canvas_shape=(20, 20),
                            samples_are_faces=True) as w:
                bad = _record(0, k=2)
                bad.samples = np.stack([bad.image, bad.image])
                w.add_face(bad)

    def test_contents_from_memory_equal_contents_read_back(self, tmp_path):
        """What the writer hands back (PartWriter.contents) is what read_part_contents finds in the file,
        and assembling from it writes the same out.h5 as assembling from the files."""
        parts = tmp_path / "parts"
        writers = []
        for name, recs, rej in (("a.h5", [_record(1, subject="S2"), _record(2, label=1)], [("x.png", "no face")]),
                                ("b.h5", [], [("y.png", "unreadable")]), ("c.h5", [_record(3)], [])):
            with PartWriter(parts / name, sample_shape=(16, 16), canvas_shape=(20, 20),
                            storage=StorageOptions(8)) as w:
                for r in recs:
                    w.add_face(r)
                for p, reason in rej:
                    w.add_reject(p, reason)
            writers.append(w)
        paths = [parts / n for n in ("a.h5", "b.h5", "c.h5")]
        for w, p in zip(writers, paths):
            mem, disk = w.contents, read_part_contents(p)
            assert mem is not None
            assert {k: mem[k] for k in ("n_faces", "n_samples", "sources", "rejects")} == \
                {k: disk[k] for k in ("n_faces", "n_samples", "sources", "rejects")}
            assert {k: (tuple(s), np.dtype(d)) for k, (s, d) in mem["shapes"].items()} == \
                {k: (tuple(s), np.dtype(d)) for k, (s, d) in disk["shapes"].items()}
            for group in ("faces", "samples"):
                for k, v in disk[group].items():
                    np.testing.assert_array_equal(np.asarray(mem[group][k]), np.asarray(v), err_msg=f"{group}/{k}")
                    if isinstance(v, np.ndarray):
                        assert np.asarray(mem[group][k]).dtype == v.dtype
        kw = dict(dataset="t", label_names=["a", "b"], config={})
        assemble(tmp_path / "disk.h5", paths, **kw)
        assemble(tmp_path / "mem.h5", paths, contents=[writers[0].contents, None, writers[2].contents], **kw)
        with h5py.File(tmp_path / "disk.h5") as a, h5py.File(tmp_path / "mem.h5") as b:
            names = []
            a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
            for n in names:
                np.testing.assert_array_equal(a[n][()], b[n][()], err_msg=n)
            assert {k: v for k, v in a.attrs.items() if k != "created"} == \
                {k: v for k, v in b.attrs.items() if k != "created"}
        with pytest.raises(ValueError, match="part contents"):
            assemble(tmp_path / "x.h5", paths, contents=[None], **kw)

    def test_writer_has_no_contents_after_a_failure(self, tmp_path):
        with pytest.raises(RuntimeError):
            with PartWriter(tmp_path / "p.h5", sample_shape=(16, 16), canvas_shape=(20, 20)) as w:
                w.add_face(_record(0))
                raise RuntimeError("boom")
        assert w.contents is None

    def test_missing_part_file_is_refused(self, tmp_path):
        with pytest.raises(NotAFacekitFileError, match="cannot be opened"):
            assemble(tmp_path / "o.h5", [tmp_path / "nope.h5"], dataset="t", label_names=[], config={})


class TestOpenFacekit:
    def test_synthetic_file(self, tmp_path):
        with open_facekit(make_synthetic_file(tmp_path / "s.h5", augment="paper")) as f:
            assert f.n_samples == 720 and f.n_faces == 36 and f.patch_size == 32
            assert f.face_box == (4, 4, 36) and not f.has_folds and f.folds is None

    def test_missing(self, tmp_path):
        with pytest.raises(NotAFacekitFileError, match="does not exist"):
            open_facekit(tmp_path / "none.h5")

    def test_not_hdf5(self, tmp_path):
        p = tmp_path / "x.h5"
        p.write_text("hello")
        with pytest.raises(NotAFacekitFileError, match="not an HDF5 file"):
            open_facekit(p)

    def test_other_tool(self, tmp_path):
        p = tmp_path / "other.h5"
        with h5py.File(p, "w") as f:
            f["data"] = np.zeros(3)
        with pytest.raises(NotAFacekitFileError, match="another tool"):
            open_facekit(p)

    def test_part_file(self, tmp_path):
        p = _part(tmp_path / "p.h5", [_record(0)])
        with pytest.raises(NotAFacekitFileError, match="part file"):
            open_facekit(p)

    def test_newer_schema(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5")
        with h5py.File(p, "r+") as f:
            f.attrs["schema_version"] = schema.SCHEMA_VERSION + 1
        with pytest.raises(NotAFacekitFileError, match="newer"):
            open_facekit(p)

    def test_missing_parts_are_detected(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5")
        shutil.rmtree(f"{p}.parts")
        with pytest.raises(NotAFacekitFileError, match="part file"):
            open_facekit(p)

    def test_counts_and_config_are_json(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5")
        with h5py.File(p) as f:
            assert json.loads(f.attrs["counts"])["samples"] == 36
            assert os.path.basename(f["samples/image"].virtual_sources()[0].file_name).startswith("part-")


def _first_part(path) -> str:
    return sorted(str(p) for p in Path(f"{path}.parts").iterdir())[0]


class TestDamagedParts:
    """Item 8 of issue 24: a damaged part is named when the file is opened (size against the
    recorded one), and verify_parts (``facekit info --check``) reads every byte."""

    def test_truncated_part_is_named_on_open(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5", augment="paper")
        part = _first_part(p)
        size = os.path.getsize(part)
        os.truncate(part, size // 2)
        with pytest.raises(DamagedPartError) as err:
            open_facekit(p)
        assert str(err.value).startswith(f"{part}: damaged part file: {size // 2} bytes where ")
        assert f"recorded {size}" in str(err.value) and "--resume" in str(err.value)

    def test_file_written_without_part_sizes_still_catches_truncation(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5", augment="paper")
        with h5py.File(p, "r+") as f:
            del f.attrs["parts"]
        open_facekit(p).close()
        part = _first_part(p)
        os.truncate(part, os.path.getsize(part) - 100)
        with pytest.raises(DamagedPartError, match="cannot be opened as HDF5 .*truncated file"):
            open_facekit(p)

    @pytest.mark.torch
    def test_degan_reads_through_open_facekit_and_names_the_part(self, tmp_path):
        """degan's data reader opens files with open_facekit: a truncated part is named there too
        (it died with a raw HDF5 OSError on the first image read)."""
        pytest.importorskip("torch")
        from degan.data import read_file_info
        p = make_synthetic_file(tmp_path / "s.h5", augment="paper")
        part = _first_part(p)
        os.truncate(part, 4096)
        with pytest.raises(NotAFacekitFileError, match=f"^{part}: damaged part file"):
            read_file_info(p)

    def test_changed_bytes_pass_the_cheap_check_and_fail_the_full_one(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5", augment="paper")
        assert verify_parts(p) == []
        part = _first_part(p)
        with open(part, "r+b") as fh:               # flip a byte in the image data, same size
            with h5py.File(part, "r") as h:
                offset = h["samples/image"].id.get_chunk_info(0).byte_offset
            fh.seek(offset + 10)
            b = fh.read(1)
            fh.seek(offset + 10)
            fh.write(bytes([b[0] ^ 0xFF]))
        open_facekit(p).close()
        assert verify_parts(p) == [(part, "CRC-32 differs from the recorded one (the bytes changed)")]

    def test_parts_record_is_written(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5", n_parts=3)
        with h5py.File(p) as f:
            recs = json.loads(f.attrs["parts"])
        assert [r["file"] for r in recs] == [f"s.h5.parts/part-0000{i}.h5" for i in range(3)]
        assert all(r["bytes"] == os.path.getsize(tmp_path / r["file"]) and isinstance(r["crc32"], int) for r in recs)


class TestMalformedFiles:
    """Item 11 of issue 24: malformed attributes and missing columns name the file."""

    @pytest.mark.parametrize("attr,prop", [("label_names", "label_names"), ("config", "config"),
                                           ("counts", "counts")])
    def test_attribute_that_is_not_json(self, tmp_path, attr, prop):
        p = make_synthetic_file(tmp_path / "s.h5")
        with h5py.File(p, "r+") as f:
            f.attrs[attr] = "{not json"
        with open_facekit(p) as f, pytest.raises(NotAFacekitFileError) as err:
            getattr(f, prop)
        assert str(err.value).startswith(f"{p}: attribute '{attr}' is not valid JSON")

    def test_attribute_of_the_wrong_kind(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5")
        with h5py.File(p, "r+") as f:
            f.attrs["label_names"] = json.dumps({"a": 1})
        with open_facekit(p) as f, pytest.raises(NotAFacekitFileError, match="not a JSON list"):
            f.label_names

    def test_missing_column_names_the_file(self, tmp_path):
        p = make_synthetic_file(tmp_path / "s.h5")
        with h5py.File(p, "r+") as f:
            del f["samples/subject"]
            del f["subjects"]
        with open_facekit(p) as f:
            with pytest.raises(NotAFacekitFileError, match="samples/subject is missing"):
                f.column("samples/subject")
            with pytest.raises(NotAFacekitFileError, match="subjects is missing"):
                f.subjects


class TestPoseAndBlendshapes:
    """Schema 2: faces/pose and faces/blendshapes, stored when the parts hold them."""

    @staticmethod
    def _records() -> list[FaceRecord]:
        rng = np.random.default_rng(0)
        recs = [dataclasses.replace(_record(i), pose=rng.normal(0, 10, 3), blendshapes=rng.uniform(0, 1, 52))
                for i in range(3)]
        recs.append(_record(3))                               # a face without them: NaN
        return recs

    def _parts(self, folder: Path, face_data: bool = True) -> tuple[list[Path], list[PartWriter]]:
        recs, paths, writers = self._records(), [], []
        for name, chunk in (("a.h5", recs[:2]), ("b.h5", []), ("c.h5", recs[2:])):
            with PartWriter(folder / name, sample_shape=(16, 16), canvas_shape=(20, 20), storage=StorageOptions(8),
                            face_data=face_data) as w:
                for r in chunk:
                    w.add_face(r)
            paths.append(folder / name)
            writers.append(w)
        return paths, writers

    def test_parts_and_assembled_file_hold_them(self, tmp_path):
        from facekit.detect import BLENDSHAPE_NAMES
        paths, writers = self._parts(tmp_path / "parts")
        for w, p in zip(writers, paths):
            disk = read_part_contents(p)
            for k in ("pose", "blendshapes"):
                np.testing.assert_array_equal(w.contents["faces"][k], disk["faces"][k])
                assert disk["faces"][k].dtype == np.float32
        assemble(tmp_path / "o.h5", paths, dataset="t", label_names=["a"], config={})
        recs = self._records()
        with open_facekit(tmp_path / "o.h5") as f:
            assert f.schema_version == schema.SCHEMA_VERSION == 2 and f.has_pose and f.has_blendshapes
            assert f.pose.shape == (4, 3) and f.pose.dtype == np.float32
            assert f.blendshapes.shape == (4, 52) and f.blendshapes.dtype == np.float32
            np.testing.assert_array_equal(f.pose[:3], np.array([r.pose for r in recs[:3]], np.float32))
            np.testing.assert_array_equal(f.blendshapes[1], recs[1].blendshapes.astype(np.float32))
            assert np.isnan(f.pose[3]).all() and np.isnan(f.blendshapes[3]).all()
            assert f.blendshape_names == list(BLENDSHAPE_NAMES)
            a = f.h5["faces/pose"].attrs
            assert json.loads(a["columns"]) == ["pitch", "yaw", "roll"] and a["units"] == "degrees"
            assert "pitch > 0 chin up" in a["convention"]
        assemble(tmp_path / "mem.h5", paths, dataset="t", label_names=["a"], config={},
                 contents=[w.contents for w in writers])
        with h5py.File(tmp_path / "o.h5") as a, h5py.File(tmp_path / "mem.h5") as b:
            for n in ("faces/pose", "faces/blendshapes"):
                np.testing.assert_array_equal(a[n][()], b[n][()])

    def test_without_them_nothing_is_stored(self, tmp_path):
        paths, _ = self._parts(tmp_path / "parts", face_data=False)
        assemble(tmp_path / "o.h5", paths, dataset="t", label_names=["a"], config={})
        with open_facekit(tmp_path / "o.h5") as f:
            assert not f.has_pose and not f.has_blendshapes
            assert f.pose is None and f.blendshapes is None and f.blendshape_names is None
            assert "faces/pose" not in f.h5

    def test_parts_that_disagree_are_refused(self, tmp_path):
        with_, _ = self._parts(tmp_path / "with")
        without, _ = self._parts(tmp_path / "without", face_data=False)
        with pytest.raises(NotAFacekitFileError, match="c.h5: part lacks head pose and blendshapes"):
            assemble(tmp_path / "o.h5", [with_[0], without[2]], dataset="t", label_names=["a"], config={})

    def test_a_schema_1_file_still_opens(self, tmp_path):
        """Files written before schema 2: same layout, no pose, version 1."""
        p = make_synthetic_file(tmp_path / "s.h5")
        with h5py.File(p, "r+") as f:
            f.attrs["schema_version"] = 1
        with open_facekit(p) as f:
            assert f.schema_version == 1 and not f.has_pose and f.pose is None and f.n_faces == 36

    def test_a_part_of_the_previous_format_is_not_reused(self, tmp_path):
        p = _part(tmp_path / "p.h5", [_record(0)])
        with h5py.File(p, "r+") as f:
            f.attrs["part_version"] = 2
        assert read_part_meta(p) == {}
        with pytest.raises(NotAFacekitFileError, match="from another facekit version"):
            read_part_contents(p)

    def test_names_attribute_that_is_not_a_list(self, tmp_path):
        paths, _ = self._parts(tmp_path / "parts")
        assemble(tmp_path / "o.h5", paths, dataset="t", label_names=["a"], config={})
        with h5py.File(tmp_path / "o.h5", "r+") as f:
            f["faces/blendshapes"].attrs["names"] = "{"
        with open_facekit(tmp_path / "o.h5") as f, pytest.raises(NotAFacekitFileError, match="faces/blendshapes"):
            f.blendshape_names
