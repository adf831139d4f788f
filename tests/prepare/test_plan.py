from pathlib import Path

import pytest

from facekit.datasets import Frame, ScanResult, Sequence
from facekit.prepare import PrepareConfig, parse_shard, plan_items, plan_parts
from facekit.prepare.config import auto_part_target
from facekit.prepare.plan import relative_source


def _scan(n_seq=5, n_frames=6):
    seqs = [Sequence(f"S{i % 2}", f"S{i % 2}/{i}", "b" if i % 3 else None,
                     tuple(Frame(f"/d/{i}/{j}.png", j) for j in range(n_frames))) for i in range(n_seq)]
    return ScanResult(("a", "b"), seqs)


class TestPlanItems:
    def test_frame_selection_and_labels(self):
        items, skipped = plan_items(_scan(), "last:3")
        assert [len(it.frames) for it in items] == [3] * 5
        assert [f.index for f in items[0].frames] == [3, 4, 5]
        assert [it.label for it in items] == [-1, 1, 1, -1, 1]
        assert skipped == []

    def test_limit_and_empty_sequences(self):
        scan = _scan()
        scan.sequences.append(Sequence("S9", "S9/x", "a", ()))
        items, skipped = plan_items(scan, "all")
        assert len(items) == 5 and skipped[0].reason == "sequence has no frames"
        assert len(plan_items(scan, "all", limit=2)[0]) == 2


class TestPlanParts:
    def test_groups_whole_sequences(self):
        items, _ = plan_items(_scan(7), "last:3")
        parts = plan_parts(items, 6)
        assert [p.n_frames for p in parts] == [6, 6, 6, 3]
        assert [p.filename for p in parts][0] == "part-00000-of-00004.h5"
        assert sum(len(p.items) for p in parts) == 7

    def test_deterministic_digest(self):
        items, _ = plan_items(_scan(7), "last:3")
        a = [p.items_digest(Path("/d")) for p in plan_parts(items, 6)]
        b = [p.items_digest(Path("/d")) for p in plan_parts(items, 6)]
        assert a == b and len(set(a)) == len(a)

    def test_auto_part_target(self):
        assert auto_part_target(24) == 8 and auto_part_target(213) == 27 and auto_part_target(981) == 123
        assert auto_part_target(100_000) == 256 and auto_part_target(3) == 8

    def test_auto_sizes_shrink(self):
        # JAFFE-like: 213 one-frame items; large parts first, 8-frame parts at the end
        items, _ = plan_items(_scan(213, n_frames=1), "all")
        sizes = [p.n_frames for p in plan_parts(items)]
        assert sizes == [27, 24, 21, 18, 16, 14, 12, 11, 9, 8, 8, 8, 8, 8, 8, 8, 5]
        assert sizes == sorted(sizes, reverse=True)

    def test_auto_sizes_keep_sequences_whole(self):
        items, _ = plan_items(_scan(327), "last:3")        # CK+: 327 sequences x 3 frames
        parts = plan_parts(items)
        assert sum(p.n_frames for p in parts) == 981 and all(p.n_frames % 3 == 0 for p in parts)
        assert max(p.n_frames for p in parts) <= 126 and parts[-1].n_frames <= 9

    def test_fixed_size_overrides(self):
        items, _ = plan_items(_scan(7), "last:3")
        assert [p.n_frames for p in plan_parts(items, 6)] == [6, 6, 6, 3]
        assert PrepareConfig("ck+", "r", "o.h5", part_faces=5).output_settings("last:3", "h")["part_faces"] == 5
        assert PrepareConfig("ck+", "r", "o.h5").output_settings("last:3", "h")["part_faces"] == "auto"

    def test_invalid_size(self):
        with pytest.raises(ValueError):
            plan_parts([], 0)


class TestRelativeSource:
    """Lexical: the same answers as os.path.relpath for paths under the root, the path itself otherwise."""

    @pytest.mark.parametrize("path, root, expected", [
        ("/d/ck/S005/001/a.png", "/d/ck", "S005/001/a.png"),
        ("/d/ck/S005/a.png", "/d/ck/", "S005/a.png"),
        ("/d/ck/x/../S005/a.png", "/d/ck", "S005/a.png"),
        ("/d/ck2/a.png", "/d/ck", "/d/ck2/a.png"),        # a sibling with the root as a name prefix
        ("/elsewhere/a.png", "/d/ck", "/elsewhere/a.png"),
        ("/d/ck", "/d/ck", "."),
        ("/a.png", "/", "a.png"),
    ])
    def test_cases(self, path, root, expected):
        assert relative_source(path, Path(root)) == expected

    def test_relative_paths_resolve_against_the_cwd(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert relative_source("data/S1/a.png", Path("data")) == "S1/a.png"
        assert relative_source(str(tmp_path / "data" / "S1" / "a.png"), Path("data")) == "S1/a.png"
        (tmp_path / "other").mkdir()
        monkeypatch.chdir(tmp_path / "other")          # the same relative root now means another folder
        assert relative_source(str(tmp_path / "data" / "S1" / "a.png"), Path("data")).startswith("/")


class TestParseShard:
    def test_valid(self):
        assert parse_shard("0/4") == (0, 4) and parse_shard(None) is None

    @pytest.mark.parametrize("text", ["4/4", "-1/2", "1", "a/b", "1/0"])
    def test_invalid(self, text):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(text)


class TestPrepareConfig:
    def test_paper_geometry(self):
        c = PrepareConfig("ck+", "raw", "out.h5")
        assert c.margin == 14 and c.align_config.canvas == 140
        assert c.augment_config.samples_per_face == 110

    @pytest.mark.parametrize("kw", [{"augment": "more"}, {"compression": "zstd"}, {"patch_size": 200},
                                    {"resume": True, "force": True}, {"workers": 0}])
    def test_invalid(self, kw):
        with pytest.raises(ValueError):
            PrepareConfig("ck+", "raw", "out.h5", **kw)

    def test_fingerprint_ignores_root_location_but_not_settings(self):
        a = PrepareConfig("ck+", "/mnt/a/raw", "o.h5").output_settings("last:3", "abc")
        b = PrepareConfig("ck+", "/data/raw", "o.h5").output_settings("last:3", "abc")
        c = PrepareConfig("ck+", "/data/raw", "o.h5", augment="none").output_settings("last:3", "abc")
        assert PrepareConfig.fingerprint(a) == PrepareConfig.fingerprint(b) != PrepareConfig.fingerprint(c)
