"""Tests of facekit.analysis.run: analyze() and run_analysis() end to end."""
import importlib.util
import json
import os
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import facekit
from facekit.align import AlignConfig, align_face
from facekit.analysis import AnalyzeConfig, read_table, run_analysis
from facekit.analysis.run import parts_dir_for
from facekit.detect import Landmarker
from facekit.errors import FileError, OutputExistsError
from facekit.imageio import read_image

AVI = "video/happy/S001-talk.avi"
MP4 = "video/surprise/S002-talk.mp4"

@pytest.fixture(scope="module")
def clips_table(fixtures_dir, model_path):
    """analyze() of the two fixture clips (one process)."""
    return facekit.analyze(fixtures_dir / "video", workers=1, landmarker=model_path)


class TestFrameBookkeeping:
    @pytest.mark.parametrize("clip", [AVI, MP4])
    def test_frames_and_times_are_the_decoders(self, clips_table, fixtures_dir, decoder_frames, clip):
        rows = clips_table[clips_table["input"] == str(fixtures_dir / clip)]
        n, times = decoder_frames(fixtures_dir / clip)
        assert rows["frame"].tolist() == list(range(n))                 # every frame once, in order
        np.testing.assert_allclose(rows["timestamp"], times, atol=1e-6)
        assert rows["timestamp"].is_monotonic_increasing

    @pytest.mark.parametrize("clip", [AVI, MP4])
    def test_no_face_rows(self, clips_table, fixtures_dir, video_blanks, clip):
        rows = clips_table[clips_table["input"] == str(fixtures_dir / clip)].set_index("frame")
        blank = list(video_blanks[clip])
        assert (rows.loc[blank, "success"] == 0).all() and (rows.loc[blank, "reason"] == "no face found").all()
        assert (rows.loc[blank, "faces"] == 0).all() and rows.loc[blank, "x_0"].isna().all()
        assert rows.loc[blank, "timestamp"].notna().all()
        found = rows.drop(index=blank)
        assert (found["success"] == 1).all() and (found["reason"] == "").all() and (found["faces"] == 1).all()
        assert found[["x_0", "y_67", "pitch", "jawOpen", "box_x1"]].notna().all().all()

    def test_summary(self, clips_table):
        s = clips_table.attrs["facekit"]
        assert s["videos"] == 2 and s["frames"] == 40 and s["faces"] == 35 and s["no_face"] == 5
        assert s["rejects"] == {"no face found": 5} and s["warnings"] == []

    def test_every(self, fixtures_dir, model_path, decoder_frames):
        df = facekit.analyze(fixtures_dir / MP4, every=5, landmarker=model_path)
        n, times = decoder_frames(fixtures_dir / MP4)
        assert df["frame"].tolist() == [0, 5, 10, 15, 20]
        np.testing.assert_allclose(df["timestamp"], [times[i] for i in (0, 5, 10, 15, 20)], atol=1e-6)
        assert df["success"].tolist() == [0, 1, 1, 1, 1]                 # frame 0 is blank


class TestTable:
    def test_dataframe_equals_csv(self, fixtures_dir, model_path, tmp_path):
        out = tmp_path / "faces.csv"
        df = facekit.analyze([fixtures_dir / "video", fixtures_dir / "jaffe" / "AA.HA1.1.tif"], out,
                             landmarker=model_path)
        pd.testing.assert_frame_equal(read_table(out), df)
        raw = pd.read_csv(out)                                          # plain pandas reads it too
        assert raw.shape == df.shape and list(raw.columns) == list(df.columns)
        np.testing.assert_array_equal(raw["x_30"].to_numpy(), df["x_30"].to_numpy())
        assert not parts_dir_for(out).exists()

    def test_without_output_same_rows(self, clips_table, fixtures_dir, model_path, tmp_path):
        df = facekit.analyze(fixtures_dir / "video", tmp_path / "o.csv", landmarker=model_path)
        pd.testing.assert_frame_equal(df, clips_table)

    def test_parquet(self, fixtures_dir, model_path, tmp_path):
        if importlib.util.find_spec("pyarrow") is None:
            pytest.skip("pyarrow not installed")
        df = facekit.analyze(fixtures_dir / MP4, tmp_path / "f.parquet", landmarker=model_path)
        pd.testing.assert_frame_equal(read_table(tmp_path / "f.parquet"), df)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), df, check_dtype=False)

    def test_parquet_without_pyarrow_is_refused(self, fixtures_dir, model_path, tmp_path, monkeypatch):
        monkeypatch.setattr("facekit.analysis.run.parquet_available", lambda: False)
        with pytest.raises(FileError, match="f.parquet: writing Parquet needs pyarrow"):
            facekit.analyze(fixtures_dir / MP4, tmp_path / "f.parquet", landmarker=model_path)
        assert not list(tmp_path.iterdir())

    def test_mesh(self, fixtures_dir, model_path):
        df = facekit.analyze(fixtures_dir / "jaffe" / "AA.HA1.1.tif", mesh=True, landmarker=model_path)
        assert "mesh_z_477" in df.columns
        with Landmarker(model_path) as lm:
            face = lm.detect(read_image(fixtures_dir / "jaffe" / "AA.HA1.1.tif"))
        np.testing.assert_allclose(df.loc[0, [f"mesh_x_{i}" for i in range(478)]].to_numpy(float),
                                   face.landmarks[:, 0], atol=0.006)
        np.testing.assert_allclose(df.loc[0, [f"x_{i}" for i in range(68)]].to_numpy(float),
                                   face.landmarks68[:, 0], atol=0.006)


class TestImages:
    def test_stills_use_image_mode(self, fixtures_dir, model_path):
        path = fixtures_dir / "folder" / "happy" / "S001_001_00000004.png"
        df = facekit.analyze(path, landmarker=model_path)
        with Landmarker(model_path, pose=True, blendshapes=True) as lm:
            face = lm.detect(read_image(path))
        assert df.loc[0, "frame"] == 0 and np.isnan(df.loc[0, "timestamp"])
        assert df.loc[0, "yaw"] == round(face.pose.yaw, 2)
        assert df.loc[0, "jawOpen"] == round(float(face.blendshapes["jawOpen"]), 5)

    def test_largest_of_several_faces(self, face_image, model_path, tmp_path):
        canvas = np.zeros((300, 560, 3), np.uint8)
        canvas[20:276, 294:550] = face_image
        canvas[40:240, 10:210] = cv2.resize(face_image, (200, 200))
        cv2.imwrite(str(tmp_path / "two.png"), canvas[..., ::-1])
        df = facekit.analyze(tmp_path / "two.png", landmarker=model_path)
        assert df.loc[0, "faces"] == 2 and df.loc[0, "box_x0"] > 294
        assert facekit.analyze(tmp_path / "two.png", max_faces=1, landmarker=model_path).loc[0, "faces"] == 1


class TestBadInput:
    def test_each_input_gets_rows_and_the_run_goes_on(self, mixed_tree, model_path, tmp_path):
        df = facekit.analyze([mixed_tree], tmp_path / "o.csv", landmarker=model_path)
        rel = df["input"].map(lambda p: os.path.relpath(p, mixed_tree))
        per = df.groupby(rel)
        rows = per.size().to_dict()
        reasons = per["reason"].agg(lambda r: sorted(set(r) - {""})).to_dict()
        assert rows["clips/a.avi"] == rows["clips/lie.avi"] == 16 and rows["clips/b.mp4"] == 24
        assert 0 < rows["clips/cut.avi"] < 16
        for name in ("clips/empty.mp4", "stills/zero.jpg"):
            assert rows[name] == 1 and reasons[name] == ["file is empty (0 bytes)"]
        assert reasons["clips/noise.mp4"][0].startswith("cannot be opened as a video")
        assert reasons["stills/half.png"][0].startswith("cannot be decoded as an image")
        assert reasons["stills/cat.png"] == ["no face found"]
        for name in ("stills/big.jpg", "stills/small.png", "stills/scan0042", "stills/anim.gif"):
            assert rows[name] == 1 and df.loc[rel == name, "success"].item() == 1, name
        unreadable = df[df["frame"] == -1]
        assert sorted(unreadable["input"].map(lambda p: os.path.relpath(p, mixed_tree))) == [
            "clips/empty.mp4", "clips/noise.mp4", "stills/half.png", "stills/zero.jpg"]
        assert unreadable["timestamp"].isna().all() and (unreadable["width"] == 0).all()
        small = df[rel == "stills/small.png"].iloc[0]          # mixed sizes: points in each image's pixels
        assert (small["width"], small["height"]) == (48, 48) and small[["x_0", "x_16"]].max() <= 48
        big = df[rel == "stills/big.jpg"].iloc[0]
        assert (big["width"], big["height"]) == (512, 512)
        s = df.attrs["facekit"]
        assert s["inputs"] == 13 and s["inputs_rejected"] == 4 and s["skipped"] == {"not an image or a video": 1}
        assert any("lie.avi: the container says 40 frames, the decoder gave 16" in w for w in s["warnings"])
        assert any("cut.avi: the container says 16 frames" in w for w in s["warnings"])

    def test_nothing_found(self, tmp_path, model_path):
        (tmp_path / "notes.txt").write_text("x")
        from facekit.analysis import NothingToAnalyseError
        with pytest.raises(NothingToAnalyseError, match="no images or videos found"):
            facekit.analyze(tmp_path, landmarker=model_path)

    def test_option_values(self):
        for kw, msg in (({"every": 0}, "every"), ({"workers": 0}, "workers"), ({"face_size": 8}, "face size"),
                        ({"resume": True}, "resume needs an output"), ({"max_faces": 0}, "max faces")):
            with pytest.raises(ValueError, match=msg):
                AnalyzeConfig(inputs=["x"], **kw)
        with pytest.raises(ValueError, match="exclude"):
            AnalyzeConfig(inputs=["x"], out="o.csv", resume=True, force=True)


class TestAligned:
    def test_files_named_by_input_and_frame(self, fixtures_dir, model_path, tmp_path):
        still = fixtures_dir / "folder" / "happy" / "S001_001_00000004.png"
        df = facekit.analyze([fixtures_dir / MP4, still], aligned=tmp_path / "al", face_size=64,
                             landmarker=model_path)
        ok = df[df["success"] == 1]
        assert (df.loc[df["success"] == 0, "aligned"] == "").all()
        names = sorted(p.name for p in (tmp_path / "al").iterdir())
        assert names == sorted(ok["aligned"]) and len(names) == len(ok)
        clip_name = df.loc[df["frame"] == 13, "aligned"].iloc[0]
        assert clip_name.endswith("S002-talk.mp4_000013.png") and "video__surprise__" in clip_name
        # the same align_face as prepare, on the same detection
        with Landmarker(model_path) as lm:
            img = read_image(still)
            expected = align_face(img, lm.detect(img).landmarks, AlignConfig(size=64)).image
        got = read_image(tmp_path / "al" / ok["aligned"].iloc[-1])
        assert got.shape == (64, 64, 3)
        np.testing.assert_array_equal(got, expected)

    def test_gray(self, fixtures_dir, model_path, tmp_path):
        facekit.analyze(fixtures_dir / "jaffe" / "AA.HA1.1.tif", aligned=tmp_path, grayscale=True,
                        landmarker=model_path)
        (png,) = tmp_path.glob("*.png")
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).shape == (112, 112)


class TestResume:
    def _cfg(self, inputs, out, model_path, **kw):
        return AnalyzeConfig(inputs=inputs, out=out, model=str(model_path), workers=1, **kw)

    def test_interrupted_video_continues_after_its_last_chunk(self, fixtures_dir, model_path, tmp_path,
                                                              monkeypatch):
        from facekit.analysis import _worker
        out = tmp_path / "o.csv"
        original = _worker.UnitProcessor._row

        def interrupt_at_12(self, inp, stem, frame, *a, **k):
            if frame == 12:
                raise KeyboardInterrupt
            return original(self, inp, stem, frame, *a, **k)

        monkeypatch.setattr(_worker.UnitProcessor, "_row", interrupt_at_12)
        with pytest.raises(KeyboardInterrupt):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, chunk_frames=5))
        parts = parts_dir_for(out)
        kept = sorted(p.name for p in parts.glob("*.csv"))
        assert len(kept) == 2 and kept[1].endswith(".000001.000000010.csv")  # frames 0-4 and 5-9
        assert not out.exists() and not (parts / "lock").exists() and not list(parts.glob("*.tmp-*"))
        first = pd.concat([pd.read_csv(parts / k) for k in kept])
        monkeypatch.setattr(_worker.UnitProcessor, "_row", original)
        with pytest.raises(OutputExistsError, match="use --resume"):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, chunk_frames=5))
        s = run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, chunk_frames=5, resume=True))
        df = read_table(out)
        assert df["frame"].tolist() == list(range(24)) and s.analysed_frames == 14
        np.testing.assert_array_equal(df["x_0"].iloc[:10].to_numpy(), first["x_0"].to_numpy())
        assert not parts.exists()

    def test_finished_units_are_not_redone(self, fixtures_dir, model_path, tmp_path, monkeypatch):
        from facekit.analysis import _worker
        out = tmp_path / "o.csv"
        done = []
        original = _worker.UnitProcessor.process

        def fail_on_mp4(self, unit, progress=None):
            if unit.inputs[0].name.endswith(".mp4"):
                raise KeyboardInterrupt
            done.append(unit.inputs[0].name)
            return original(self, unit, progress)

        monkeypatch.setattr(_worker.UnitProcessor, "process", fail_on_mp4)
        inputs = [fixtures_dir / AVI, fixtures_dir / MP4]
        with pytest.raises(KeyboardInterrupt):
            run_analysis(self._cfg(inputs, out, model_path))
        assert done == [str(fixtures_dir / AVI)]

        def record(self, unit, progress=None):
            done.append(unit.inputs[0].name)
            return original(self, unit, progress)

        monkeypatch.setattr(_worker.UnitProcessor, "process", record)
        s = run_analysis(self._cfg(inputs, out, model_path, resume=True))
        assert done == [str(fixtures_dir / AVI), str(fixtures_dir / MP4)]      # the avi once only
        assert s.units_reused == 1 and s.frames == 40 and s.analysed_frames == 24
        assert read_table(out)["input"].map(os.path.basename).unique().tolist() == ["S001-talk.avi",
                                                                                     "S002-talk.mp4"]

    def test_other_settings_are_refused(self, fixtures_dir, model_path, tmp_path, monkeypatch):
        from facekit.analysis import _worker
        out = tmp_path / "o.csv"
        monkeypatch.setattr(_worker.UnitProcessor, "process", lambda *a, **k: (_ for _ in ()).throw(
            KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path))
        with pytest.raises(OutputExistsError, match="other settings.*every 1 -> 2"):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, every=2, resume=True))

    def test_existing_output(self, fixtures_dir, model_path, tmp_path):
        out = tmp_path / "o.csv"
        run_analysis(self._cfg([fixtures_dir / MP4], out, model_path))
        with pytest.raises(OutputExistsError, match="already exists; use --force"):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path))
        with pytest.raises(OutputExistsError, match="nothing to resume"):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, resume=True))
        s = run_analysis(self._cfg([fixtures_dir / AVI], out, model_path, force=True))
        assert s.complete and read_table(out)["frame"].max() == 15

    def test_a_second_run_on_the_same_output_is_refused(self, fixtures_dir, model_path, tmp_path):
        from facekit._fs import this_host
        from facekit.errors import OutputLockedError
        out = tmp_path / "o.csv"
        parts = parts_dir_for(out)
        parts.mkdir()
        (parts / "lock").write_text(json.dumps({"pid": os.getppid(), "host": this_host(), "doing": "analyze"}))
        with pytest.raises(OutputLockedError, match=f"locked by pid {os.getppid()} .*: an analyze run"):
            run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, resume=True))
        (parts / "lock").write_text(json.dumps({"pid": 2 ** 22 + 17, "host": this_host()}))
        assert run_analysis(self._cfg([fixtures_dir / MP4], out, model_path, resume=True)).complete  # stale

    def test_outputs_inside_the_input_folder(self, fixtures_dir, model_path, tmp_path):
        """OUT, OUT.parts/ and the aligned faces may live in the folder being analysed."""
        shutil.copy(fixtures_dir / MP4, tmp_path / "clip.mp4")
        out = tmp_path / "faces.csv"
        from facekit.analysis import _worker
        original = _worker.UnitProcessor._row
        calls = {"n": 0}

        def interrupt_late(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == 20:
                raise KeyboardInterrupt
            return original(self, *a, **k)

        import unittest.mock
        with unittest.mock.patch.object(_worker.UnitProcessor, "_row", interrupt_late):
            with pytest.raises(KeyboardInterrupt):
                run_analysis(self._cfg([tmp_path], out, model_path, aligned=tmp_path / "al", chunk_frames=4))
        assert list((tmp_path / "al").glob("*.png"))
        s = run_analysis(self._cfg([tmp_path], out, model_path, aligned=tmp_path / "al", chunk_frames=4,
                                   resume=True))
        assert s.inputs == 1 and read_table(out)["frame"].tolist() == list(range(24))

    def test_force_does_not_break_into_a_live_run(self, fixtures_dir, model_path, tmp_path):
        from facekit._fs import this_host
        from facekit.errors import OutputLockedError
        out = tmp_path / "o.csv"
        parts = parts_dir_for(out)
        parts.mkdir()
        (parts / "lock").write_text(json.dumps({"pid": os.getppid(), "host": this_host()}))
        (parts / "i0123.csv").write_text("a part of the live run\n")
        with pytest.raises(OutputLockedError):
            run_analysis(AnalyzeConfig(inputs=[fixtures_dir / MP4], out=out, model=str(model_path), force=True))
        assert (parts / "i0123.csv").exists()


class TestWorkers:
    def test_two_workers_same_table(self, mixed_tree, model_path, tmp_path):
        one = facekit.analyze(mixed_tree, tmp_path / "one.csv", workers=1, landmarker=model_path)
        two = facekit.analyze(mixed_tree, tmp_path / "two.csv", workers=2, landmarker=model_path)
        assert two.attrs["facekit"]["workers"] == 2
        pd.testing.assert_frame_equal(one, two)
