import pytest

from facekit.frames import FrameSpec, parse_frame_spec, select_frames


class TestParseFrameSpec:
    @pytest.mark.parametrize("text,mode,count", [("last:3", "last", 3), ("MIDDLE:3", "middle", 3),
                                                  (" first : 1 ", "first", 1), ("all", "all", None)])
    def test_valid(self, text, mode, count):
        assert parse_frame_spec(text) == FrameSpec(mode, count)

    @pytest.mark.parametrize("text", ["last", "last:0", "peak:3", "middle:-1", "", "all:3"])
    def test_invalid_names_the_spec(self, text):
        with pytest.raises(ValueError, match="frame selection"):
            parse_frame_spec(text)

    def test_round_trip(self):
        assert str(parse_frame_spec("middle:3")) == "middle:3"
        assert str(parse_frame_spec("all")) == "all"


class TestSelectFrames:
    def test_last_three_is_ckplus_protocol(self):
        assert select_frames(12, "last:3") == [9, 10, 11]

    def test_middle_three_centres_on_middle_frame(self):
        assert select_frames(11, "middle:3") == [4, 5, 6]
        assert select_frames(10, "middle:3") == [4, 5, 6]
        assert select_frames(4, "middle:3") == [1, 2, 3]

    def test_first(self):
        assert select_frames(5, "first:2") == [0, 1]

    def test_all(self):
        assert select_frames(4, "all") == [0, 1, 2, 3]

    def test_short_sequence_yields_all_frames(self):
        assert select_frames(2, "last:3") == [0, 1]
        assert select_frames(1, "middle:3") == [0]

    def test_empty(self):
        assert select_frames(0, "last:3") == []

    def test_negative_count_rejected(self):
        with pytest.raises(ValueError):
            select_frames(-1, "all")
