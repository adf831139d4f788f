"""facekit.inspect.preview: contact sheets as arrays and PNG files."""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pytest

from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from facekit.errors import NotAFacekitFileError
from facekit.inspect import PreviewError, render_contact_sheet, render_source_sheet, save_preview
from facekit.inspect import preview as preview_mod
from facekit.inspect.preview import (FACE_BOX_GID, KEY_COLOUR, KEY_POINTS_GID, MESH_COLOUR, MESH_POINTS_GID, Cell,
                                     marker_diameters, pick_faces, render_grid, tile_caption)

#: a sheet of faces has a pixel standard deviation far above this; a blank one is ~0
NOT_BLANK_STD = 20.0
#: points per pixel of the figures (100 dpi): scatter sizes are areas in points^2
PT = 72 / 100
#: the fixtures' face box is 32 px in a 40-px canvas: at a 128-px tile it is drawn 102.4 px wide, the nominal size
KEY_D, EDGE_W, MESH_D = 3.6, 0.6, 1.2
#: the legend line of sheets that draw the 478 landmarks
LEGEND = "green: the 68 iBUG points of the 478 landmarks, cyan: the other 410, dashed: the face box"


class Drawn:
    """What a renderer drew, read from its figure through ``on_figure`` before it became pixels."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.artists: dict[str, list] = {}
        self.calls = 0

    def __call__(self, fig) -> None:
        self.calls += 1
        self.texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
        self.text_artists = [t for t in fig.findobj(Text) if t.get_text()]
        self.renderer = fig.canvas.get_renderer()
        self.artists = {}
        for a in fig.findobj():
            if a.get_gid():
                self.artists.setdefault(a.get_gid(), []).append(a)

    def captions(self) -> list[str]:
        """The contact-sheet tile captions (``<subject> · face <N>``)."""
        return [t for t in self.texts if re.fullmatch(r"\S+ · face \d+", t)]

    def lines(self) -> list[str]:
        return [line for t in self.texts for line in t.splitlines()]

    def markers(self, gid: str):  # type: ignore[no-untyped-def]
        found = self.artists.get(gid, [])
        assert len(found) <= 1, f"one collection per kind of marker, got {len(found)}"
        return found[0] if found else None


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


class TestMarkerDiameters:
    def test_nominal_size_at_the_reference_face(self) -> None:
        assert marker_diameters(102.4) == pytest.approx((KEY_D, EDGE_W, MESH_D))

    def test_grows_with_the_face(self) -> None:
        assert marker_diameters(204.8) == pytest.approx((7.2, 1.2, 2.4))

    def test_never_below_the_minimum(self) -> None:
        assert marker_diameters(20) == (2.5, 0.5, 1.0)


class TestTileCaption:
    def test_subject_and_face_index(self) -> None:
        assert tile_caption("S005", 12) == "S005 · face 12"

    def test_long_subject_is_shortened_not_the_index(self) -> None:
        cap = tile_caption("a-very-long-subject-name", 98765)
        assert cap == "a-very-long… · face 98765"


class TestRenderGrid:
    def _one(self, tile: int, **cell):  # type: ignore[no-untyped-def]
        drawn = Drawn()
        img = render_grid([[Cell(np.full((40, 40), 128, np.uint8), **cell)]], tile=tile, on_figure=drawn)
        return img, drawn

    def test_on_figure_sees_the_figure_before_it_becomes_pixels(self) -> None:
        img, drawn = self._one(64, caption="hello", points=np.array([[20.0, 20.0]]))
        assert drawn.calls == 1 and drawn.texts == ["hello"]
        assert drawn.markers(KEY_POINTS_GID).get_offsets().shape == (1, 2)
        assert img.shape == (2 * 10 + 14 + 64, 2 * 10 + 64, 3)

    @pytest.mark.parametrize("tile", [128, 256])
    def test_key_marker_has_the_chosen_size_in_pixels(self, tile: int) -> None:
        """One marker on a flat grey tile: the pixels it changes span its diameter."""
        img, drawn = self._one(tile, points=np.array([[20.0, 20.0]]), face=32)
        key, edge, _ = marker_diameters(tile * 32 / 40)
        coll = drawn.markers(KEY_POINTS_GID)
        assert np.allclose(coll.get_sizes(), ((key - edge) * PT) ** 2)
        assert np.allclose(np.asarray(coll.get_linewidths()), edge * PT)
        assert to_rgba(coll.get_facecolor()[0]) == to_rgba(KEY_COLOUR)
        assert to_rgba(coll.get_edgecolor()[0]) == to_rgba("black")
        tile_px = img[10:10 + tile, 10:10 + tile].astype(int)
        changed = np.abs(tile_px - 128).max(axis=2) > 40
        ys, xs = np.nonzero(changed)
        assert key - 1 <= xs.max() - xs.min() + 1 <= key + 2 and key - 1 <= ys.max() - ys.min() + 1 <= key + 2
        r, g, b = (tile_px[ys, xs, i] for i in range(3))
        assert np.any((g > 200) & (r < 140)) and np.any(tile_px[ys, xs].max(axis=1) < 90)  # light fill, dark edge

    def test_markers_follow_the_face_size_not_only_the_tile(self) -> None:
        pts = np.array([[20.0, 20.0]])
        _, small_face = self._one(128, points=pts, face=16)
        _, big_face = self._one(128, points=pts, face=36)
        assert small_face.markers(KEY_POINTS_GID).get_sizes()[0] < big_face.markers(KEY_POINTS_GID).get_sizes()[0]

    def test_mesh_points_are_small_and_translucent(self) -> None:
        _, drawn = self._one(128, mesh=np.array([[10.0, 10.0], [30.0, 30.0]]), face=32)
        coll = drawn.markers(MESH_POINTS_GID)
        assert np.allclose(coll.get_sizes(), (MESH_D * PT) ** 2)
        assert coll.get_alpha() == preview_mod.MESH_ALPHA < 1
        assert to_rgba(coll.get_facecolor()[0])[:3] == to_rgba(MESH_COLOUR)[:3]
        assert drawn.markers(KEY_POINTS_GID) is None

    def test_points_outside_the_image_are_not_drawn(self) -> None:
        pts = np.array([[5.0, 5.0], [-3.0, 5.0], [5.0, 41.0], [np.nan, 1.0]])
        _, drawn = self._one(64, points=pts)
        assert drawn.markers(KEY_POINTS_GID).get_offsets().shape == (1, 2)

    def test_a_caption_wider_than_its_tile_is_drawn_smaller(self) -> None:
        _, drawn = self._one(64, caption="bottom-right -12° flip")
        (cap,) = drawn.text_artists
        assert 4 <= cap.get_fontsize() < 6
        assert cap.get_window_extent(drawn.renderer).width <= 64 + 6
        _, drawn = self._one(128, caption="bottom-right -12° flip")
        assert drawn.text_artists[0].get_fontsize() == 6


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
        assert all(c.points.shape == (68, 2) and c.mesh.shape == (410, 2) and c.box == (4, 4, 32)
                   for row in call["rows"] for c in row)

    def test_colour_sheet(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "c.h5", [(f"S{i}", i % 2) for i in range(6)], ["a", "b"], color=True)
        img = render_contact_sheet(p, per_class=3, tile=48)
        assert img.std() > NOT_BLANK_STD
        assert np.abs(img[..., 0].astype(int) - img[..., 2]).mean() > 5  # really in colour

    def test_landmarks_are_drawn(self, gray_file: Path) -> None:
        with_marks = render_contact_sheet(gray_file, per_class=2, tile=96)
        without = render_contact_sheet(gray_file, per_class=2, tile=96, landmarks=False)
        assert _green(with_marks) > _green(without) + 100

    def test_tiles_are_labelled_with_subject_and_face_index(self, gray_file: Path, capture) -> None:
        """The caption's face index is the face shown (what --source N takes), and its subject is that face's."""
        render_contact_sheet(gray_file, per_class=4)
        with h5py.File(gray_file) as h5:
            canvases, subj = h5["faces/image"][()], h5["faces/subject"][()]
            names = [n.decode() if isinstance(n, bytes) else n for n in h5["subjects"][()]]
        cells = [c for row in capture[0]["rows"] for c in row]
        assert len(cells) == 12
        for c in cells:
            subject, face = c.caption.split(" · face ")
            assert np.array_equal(canvases[int(face)], c.image)
            assert names[subj[int(face)]] == subject
        assert len({c.caption for c in cells}) == 12

    def test_figure_has_class_labels_counts_and_tile_labels(self, gray_file: Path) -> None:
        drawn = Drawn()
        render_contact_sheet(gray_file, per_class=4, on_figure=drawn)
        texts = drawn.texts
        for name in ("anger", "happy", "surprise"):
            assert name in texts
        assert texts.count("8 faces, 4 subjects") == 3
        captions = drawn.captions()
        assert len(captions) == 12 and all(t.split(" · face ")[0] in {"S0", "S1", "S2", "S3"} for t in captions)
        assert "above each face: subject · face N (its samples: --source N)" in drawn.lines()[1]
        assert LEGEND in drawn.lines()

    def test_markers_are_drawn_with_the_chosen_size(self, gray_file: Path) -> None:
        """68 key points and 410 mesh points per tile, at the nominal size for a 102.4-px face box."""
        drawn = Drawn()
        render_contact_sheet(gray_file, per_class=4, tile=128, on_figure=drawn)
        key, mesh = drawn.markers(KEY_POINTS_GID), drawn.markers(MESH_POINTS_GID)
        assert key.get_offsets().shape == (12 * 68, 2) and mesh.get_offsets().shape == (12 * 410, 2)
        assert np.allclose(key.get_sizes(), ((KEY_D - EDGE_W) * PT) ** 2)
        assert np.allclose(np.asarray(key.get_linewidths()), EDGE_W * PT)
        assert np.allclose(mesh.get_sizes(), (MESH_D * PT) ** 2)
        assert len(drawn.artists[FACE_BOX_GID]) == 12
        assert all(isinstance(b, Rectangle) and b.get_width() == pytest.approx(102.4)
                   for b in drawn.artists[FACE_BOX_GID])

    def test_key_points_are_the_ibug68_subset(self, gray_file: Path, capture) -> None:
        from facekit.detect import MESH_TO_IBUG68
        render_contact_sheet(gray_file, per_class=1)
        c = capture[0]["rows"][0][0]
        with h5py.File(gray_file) as h5:
            face = int(c.caption.split(" · face ")[1])
            mesh = h5["faces/landmarks"][face]
        assert np.array_equal(c.points, mesh[MESH_TO_IBUG68])
        rest = np.delete(mesh, MESH_TO_IBUG68, axis=0)
        assert np.array_equal(c.mesh, rest) and c.face == 32

    def test_no_landmarks_keeps_the_labels(self, gray_file: Path) -> None:
        drawn = Drawn()
        render_contact_sheet(gray_file, per_class=2, landmarks=False, on_figure=drawn)
        assert not {KEY_POINTS_GID, MESH_POINTS_GID, FACE_BOX_GID} & drawn.artists.keys()
        assert len(drawn.captions()) == 6
        assert LEGEND not in drawn.lines()

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
        assert rows[0][0].caption == "aligned face" and rows[0][0].points.shape == (68, 2)
        assert rows[0][0].mesh.shape == (410, 2) and rows[0][0].box == (4, 4, 32)
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

    def test_single_sample_is_drawn_large_with_its_mesh(self, gray_file: Path) -> None:
        drawn = Drawn()
        img, _ = render_source_sheet(gray_file, 5, on_figure=drawn)
        assert img.shape[:2] == (2 * 10 + 3 * 17 + 6 + 14 + 256, 643)  # 3 title lines, caption, a 256-px tile
        key, mesh = drawn.markers(KEY_POINTS_GID), drawn.markers(MESH_POINTS_GID)
        assert key.get_offsets().shape == (68, 2) and mesh.get_offsets().shape == (410, 2)
        big = marker_diameters(256 * 32 / 40)
        assert np.allclose(key.get_sizes(), ((big[0] - big[1]) * PT) ** 2)
        assert "whole aligned face" in drawn.texts and LEGEND in drawn.lines()
        assert drawn.lines()[0] == "gray.h5: face 5: anger, subject S2, raw/S2/005.png (frame 0)"

    def test_figure_labels_and_sample_markers(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "aug.h5", [("A", 0), ("B", 1)], ["x", "y"], augment="paper")
        drawn = Drawn()
        img, n = render_source_sheet(p, 1, on_figure=drawn)
        assert img.shape[:2] == (2 * 10 + 3 * 17 + 6 + 4 * (14 + 104) + 3 * 6, 2 * 10 + 10 * 104 + 9 * 6)
        assert "aligned face" in drawn.texts
        assert drawn.texts.count("centre -5° flip") == 1 and drawn.texts.count("bottom-right +5°") == 1
        assert len([t for t in drawn.texts if t.endswith("°") or t.endswith("flip")]) == 30
        key = drawn.markers(KEY_POINTS_GID)
        assert key.get_offsets().shape == (68 + 30 * 68, 2)  # the aligned face's 68, then each sample's
        sizes = key.get_sizes()
        aligned, sample = marker_diameters(104 * 32 / 40), marker_diameters(104 * 32 / 24)  # face box 32 in both
        assert np.allclose(sizes[:68], ((aligned[0] - aligned[1]) * PT) ** 2)
        assert np.allclose(sizes[68:], ((sample[0] - sample[1]) * PT) ** 2)
        assert drawn.markers(MESH_POINTS_GID).get_offsets().shape == (410, 2)
        assert any(line.startswith("green: the 68 iBUG points; on the aligned face") for line in drawn.lines())

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

    def test_png_size_and_labels(self, gray_file: Path, tmp_path: Path) -> None:
        """The PNG has the layout's size; the figure it was made from has every label."""
        drawn = Drawn()
        out = tmp_path / "sheet.png"
        res = save_preview(gray_file, out, on_figure=drawn)
        img = matplotlib.image.imread(out)
        # 3 rows of a 14-px caption and a 128-px tile, 3 title lines; 6 tiles and the class labels across
        assert img.shape[:2] == (res.height, res.width) == (2 * 10 + 3 * 17 + 6 + 3 * (14 + 128) + 2 * 6,
                                                           2 * 10 + 130 + 6 * 128 + 5 * 6)
        assert {"anger", "happy", "surprise"} <= set(drawn.texts)
        assert len(drawn.captions()) == 18
        assert drawn.lines()[0] == "gray.h5: testset, 24 aligned faces of 4 subjects" and LEGEND in drawn.lines()
        assert drawn.markers(KEY_POINTS_GID).get_offsets().shape == (18 * 68, 2)

    def test_source_png_size_and_labels(self, tmp_path: Path, facekit_file) -> None:
        p = facekit_file(tmp_path / "aug.h5", [("A", 0)], ["x"], augment="paper")
        drawn = Drawn()
        res = save_preview(p, tmp_path / "face.png", face=0, columns=6, tile=64, on_figure=drawn)
        img = matplotlib.image.imread(tmp_path / "face.png")
        assert img.shape[:2] == (res.height, res.width)
        assert res.height == 2 * 10 + 3 * 17 + 6 + 6 * (14 + 64) + 5 * 6  # aligned face + 5 rows of 6 samples
        assert drawn.lines()[0] == "aug.h5: face 0: x, subject A, raw/A/000.png (frame 0)"
        assert len([t for t in drawn.texts if "°" in t]) == 30

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
