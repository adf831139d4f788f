"""Tests of facekit.analysis.table: columns, rows, reading and writing the table."""
import importlib.util

import numpy as np
import pandas as pd
import pytest

from facekit.analysis.table import (DECIMALS, columns, empty_row, face_row, read_table, table_format, to_frame,
                                    write_table)
from facekit.detect import BLENDSHAPE_NAMES, Face, pose_matrix


def _face() -> Face:
    rng = np.random.default_rng(0)
    pts = rng.uniform(10, 90, (478, 3)).astype(np.float32)
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = pose_matrix(-7.25, 12.5, 3.125)
    return Face(pts, matrix=m, blendshape_scores=rng.uniform(0, 1, 52).astype(np.float32))


class TestColumns:
    def test_order_and_count(self):
        cols = columns()
        assert cols[:8] == ["input", "frame", "timestamp", "success", "reason", "faces", "width", "height"]
        assert cols[8:12] == ["box_x0", "box_y0", "box_x1", "box_y1"]
        assert cols[12:14] == ["x_0", "x_1"] and cols[12 + 68] == "y_0"
        assert cols[-55:-52] == ["pitch", "yaw", "roll"] and cols[-52:] == list(BLENDSHAPE_NAMES)
        assert len(cols) == 8 + 4 + 136 + 3 + 52 and len(set(cols)) == len(cols)

    def test_mesh_and_aligned(self):
        cols = columns(mesh=True, aligned=True)
        assert len(cols) == len(columns()) + 3 * 478 + 1 and cols[-1] == "aligned"
        assert cols.index("mesh_x_0") == cols.index("y_67") + 1 and "mesh_z_477" in cols


class TestRows:
    def test_face_row(self):
        face = _face()
        row = face_row("a.mp4", 7, face, faces=2, width=100, height=90, timestamp=0.2916666667, mesh=True,
                       aligned="a.mp4_000007.png")
        assert row["success"] == 1 and row["reason"] == "" and row["faces"] == 2
        assert row["timestamp"] == 0.291667
        assert (row["pitch"], row["yaw"], row["roll"]) == pytest.approx((-7.25, 12.5, 3.12), abs=0.006)
        assert row["x_36"] == round(float(face.landmarks68[36, 0]), DECIMALS["px"])
        assert row["mesh_z_5"] == round(float(face.landmarks[5, 2]), DECIMALS["px"])
        assert row["box_x1"] == round(face.box[2], 2)
        assert row["jawOpen"] == round(float(face.blendshape_scores[25]), DECIMALS["score"])
        assert set(row) == set(columns(mesh=True, aligned=True))

    def test_empty_row(self):
        row = empty_row("x.png", 0, reason="no face found", width=40, height=30)
        assert row["success"] == 0 and np.isnan(row["timestamp"]) and row["faces"] == 0
        df = to_frame([row], columns())
        assert df["x_0"].isna().all() and df["reason"].iloc[0] == "no face found" and df["width"].iloc[0] == 40


class TestReadWrite:
    def _table(self):
        rows = [face_row("clip NA.mp4", i, _face(), faces=1, width=100, height=90, timestamp=i / 25)
                for i in range(3)]
        rows.append(empty_row("NA", -1, reason="file is empty (0 bytes)"))
        rows.append(empty_row("caf\\xe9,\"quoted\".png", 0, reason="no face found"))
        return to_frame(rows, columns())

    def test_csv_round_trip_is_exact(self, tmp_path):
        df = self._table()
        write_table(df, tmp_path / "t.csv")
        back = read_table(tmp_path / "t.csv")
        pd.testing.assert_frame_equal(back, df)
        assert back["input"].iloc[3] == "NA" and back["reason"].iloc[0] == ""   # strings stay strings
        assert not list(tmp_path.glob("*.tmp-*"))

    def test_parquet_round_trip(self, tmp_path):
        if importlib.util.find_spec("pyarrow") is None:
            pytest.skip("pyarrow not installed")
        df = self._table()
        write_table(df, tmp_path / "t.parquet")
        pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), df)

    def test_formats(self):
        assert table_format("a/b.CSV") == "csv" and table_format("b.parquet") == "parquet"
        with pytest.raises(ValueError, match="b.xlsx: unknown table format '.xlsx'"):
            table_format("b.xlsx")

    def test_write_is_atomic(self, tmp_path, monkeypatch):
        df = self._table()
        (tmp_path / "t.csv").write_text("old\n")

        def boom(*a, **k):
            raise KeyboardInterrupt
        monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
        with pytest.raises(KeyboardInterrupt):
            write_table(df, tmp_path / "t.csv")
        assert (tmp_path / "t.csv").read_text() == "old\n" and not list(tmp_path.glob("*.tmp-*"))

    def test_worker_csv_is_what_pandas_writes(self, tmp_path):
        """Workers write parts with the csv module (no pandas import there): the same bytes."""
        from facekit.analysis.table import write_csv_rows
        df = self._table()
        rows = df.to_dict("records")
        write_csv_rows(rows, list(df.columns), tmp_path / "a.csv")
        df.to_csv(tmp_path / "b.csv", index=False)
        assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
