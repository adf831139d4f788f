"""facekit.inspect.preview: contact sheets as arrays and PNG files."""
from __future__ import annotations

from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pytest

from facekit.errors import NotAFacekitFileError
from facekit.inspect import PreviewError, render_contact_sheet, render_source_sheet, save_preview
from facekit.inspect import preview as preview_mod
from facekit.inspect.preview import pick_faces

#: a sheet of faces has a pixel standard deviation far above this; a blank one is ~0
NOT_BLANK_STD = 20.0


def _green(img: np.ndarray) -> int:
    """Pixels in the landmark colour's neighbourhood (green clearly above red and blue)."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return int(np.count_nonzero((g - r > 60) & (g - b > 30)))


@pytest.fixture
def capture(monkeypatch):
    """Record what render_grid is asked to draw (returns a small dummy image)."""
    calls: list[dict] = []

    def fake(rows, **kw):
        calls.append({"rows": rows, **kw})
        return np.zeros((4, 4, 3), np.uint8)

    monkeypatch.setattr(preview_mod, "render_grid", fake)
    return calls


class TestPickFaces:
    def test_different_subjects_first(self) -> None:
        labels = np.zeros(12, np.int64)
        subjects = np.repeat(np.arange(4), 3)  # 4 subjects x 3 faces
        chosen = pick_faces(labels, subjects, 0, 6, np.random.default_rng(0))
        assert len(chosen) == 6
        assert sorted(subjects[chosen[:4]].tolist()) == [0, 1, 2, 3]

    def test_only_that_class_and_at_most_n(self) -> None:
        labels = np.array([0, 1, 1, 0, 1])
        chosen = pick_faces(labels, np.arange(5), 1, 10, np.random.default_rng(1))
        assert sorted(chosen.tolist()) == [1, 2, 4]
        assert pick_faces(labels, np.arange(5), 2, 3, np.random.default_rng(1)).size == 0


class TestRenderContactSheet:
    def test_grayscale_sheet(self, gray_file: Path) -> None:
        img = render_contact_sheet(gray_file, per_class=4, tile=64)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert img.shape[1] >= 2 * 10 + 130 + 4 * 64 + 3 * 6  # margins, labels, tiles, gaps (a title may widen it)
        assert img.shape[0] >= 3 * 64
        assert img.std() > NOT_BLANK_STD

    def test_one_row_per_class_from_different_subjects(self, gray_file: Path, capture) -> None:
        render_contact_sheet(gray_file, per_class=4)
        call = capture[0]
        assert [name for name, _ in call["row_labels"]] == ["anger", "happy", "surprise"]
        assert call["row_labels"][0][1] == "8 faces, 4 subjects"
        assert all(len(row) == 4 for row in call["rows"])
        with h5py.File(gray_file) as h5:
            subj, canvases = h5["faces/subject"][()], h5["faces/image"][()]
        for row in call["rows"]:  # four different subjects per row
            found = {int(subj[np.flatnonzero((canvases == c.image).all(axis=(1, 2)))[0]]) for c in row}
            assert found == {0, 1, 2, 3}
        assert all(c.points.shape == (478, 2) and c.box == (4, 4, 32) for row in call["rows"] for c in row)

    def test_colour_sheet(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "c.h5", [(f"S{i}", i % 2) for i in range(6)], ["a", "b"], color=True)
        img = render_contact_sheet(p, per_class=3, tile=48)
        assert img.std() > NOT_BLANK_STD
        assert np.abs(img[..., 0].astype(int) - img[..., 2]).mean() > 5  # really in colour

    def test_landmarks_are_drawn(self, gray_file: Path) -> None:
        with_marks = render_contact_sheet(gray_file, per_class=2, tile=96)
        without = render_contact_sheet(gray_file, per_class=2, tile=96, landmarks=False)
        assert _green(with_marks) > _green(without) + 100

    def test_reproducible(self, gray_file: Path) -> None:
        a = render_contact_sheet(gray_file, per_class=2, tile=32, seed=3)
        assert np.array_equal(a, render_contact_sheet(gray_file, per_class=2, tile=32, seed=3))

    def test_class_without_faces(self, tmp_path: Path, facekit_file, capture) -> None:
        p = facekit_file(tmp_path / "e.h5", [("A", 0), ("B", 0)], ["present", "absent"])
        render_contact_sheet(p)
        assert [len(r) for r in capture[0]["rows"]] == [2, 0]

    def test_empty_row_renders(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "e.h5", [("A", 0), ("B", 0)], ["present", "absent"])
        assert render_contact_sheet(p, tile=48).std() > NOT_BLANK_STD

    def test_bad_per_class(self, gray_file: Path) -> None:
        with pytest.raises(ValueError, match="per_class must be at least 1"):
            render_contact_sheet(gray_file, per_class=0)


class TestRenderSourceSheet:
    def test_samples_in_stored_order_with_titles(self, tmp_path: Path, facekit_file, capture) -> None:
        p = facekit_file(tmp_path / "aug.h5", [("A", 0), ("B", 1)], ["x", "y"], augment="paper")
        _, n = render_source_sheet(p, 1, columns=6)
        assert n == 30
        rows = capture[0]["rows"]
        assert rows[0][0].caption == "aligned face" and rows[0][0].points.shape == (478, 2)
        cells = [c for row in rows[1:] for c in row]
        assert [len(r) for r in rows[1:]] == [6] * 5
        with h5py.File(p) as h5:
            mine = np.flatnonzero(h5["samples/face"][()] == 1)
            patch, angle, flip = (h5[f"samples/{k}"][()][mine] for k in ("patch", "angle", "flip"))
            imgs = h5["samples/image"][()][mine]
        names = ["centre", "top-left", "top-right", "bottom-left", "bottom-right"]
        assert [c.caption for c in cells] == [f"{names[pp]} {a:+g}°" + (" flip" if fl else "")
                                              for pp, a, fl in zip(patch, angle, flip)]
        assert all(np.array_equal(c.image, im) for c, im in zip(cells, imgs))
        assert all(c.points.shape == (68, 2) for c in cells)
        assert "face 1: y, subject B" in capture[0]["title"]

    def test_real_rendering(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "aug.h5", [("A", 0)], ["x"], augment="paper", color=True)
        img, n = render_source_sheet(p, 0, tile=40)
        assert n == 30 and img.std() > NOT_BLANK_STD
        assert img.shape[0] > 4 * 40  # aligned face row + 3 rows of 10 samples

    def test_augment_none_shows_the_single_sample_and_says_so(self, gray_file: Path, capture) -> None:
        _, n = render_source_sheet(gray_file, 5)
        assert n == 1
        assert len(capture[0]["rows"]) == 1 and len(capture[0]["rows"][0]) == 1
        assert capture[0]["rows"][0][0].caption == "whole aligned face"
        assert "prepared with --augment none: one sample per face" in capture[0]["title"]

    @pytest.mark.parametrize("face", [-1, 24, 1000])
    def test_face_out_of_range(self, gray_file: Path, face: int) -> None:
        with pytest.raises(PreviewError, match=rf"gray\.h5: has no face {face}: faces are numbered 0\.\.23"):
            render_source_sheet(gray_file, face)


class TestSavePreview:
    def test_writes_a_png_that_is_not_blank(self, gray_file: Path, tmp_path: Path) -> None:
        out = tmp_path / "sheet.png"
        res = save_preview(gray_file, out, per_class=3)
        img = matplotlib.image.imread(out)
        assert img.shape[:2] == (res.height, res.width) and res.width > 300 and res.height > 300
        assert img[..., :3].std() * 255 > NOT_BLANK_STD
        assert res.summary == "3 classes x up to 3 faces"
        assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []

    def test_source_png(self, gray_file: Path, tmp_path: Path) -> None:
        res = save_preview(gray_file, tmp_path / "face.png", face=2)
        assert res.summary == "face 2: 1 sample (prepared with --augment none: one sample per face)"
        assert matplotlib.image.imread(tmp_path / "face.png").std() * 255 > NOT_BLANK_STD

    def test_interrupt_keeps_previous_png(self, gray_file: Path, tmp_path: Path, monkeypatch) -> None:
        out = tmp_path / "sheet.png"
        out.write_bytes(b"previous")

        def boom(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(matplotlib.image, "imsave", boom)
        with pytest.raises(KeyboardInterrupt):
            save_preview(gray_file, out)
        assert out.read_bytes() == b"previous"
        assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []

    def test_missing_output_folder(self, gray_file: Path, tmp_path: Path) -> None:
        with pytest.raises(PreviewError, match=r"sheet\.png: cannot write the PNG: folder .*nope does not exist"):
            save_preview(gray_file, tmp_path / "nope" / "sheet.png")

    def test_not_a_facekit_file(self, tmp_path: Path) -> None:
        p = tmp_path / "x.h5"
        h5py.File(p, "w").close()
        with pytest.raises(NotAFacekitFileError, match=r"x\.h5: not a facekit file"):
            save_preview(p, tmp_path / "s.png")
        assert not (tmp_path / "s.png").exists()
