"""Tests that the built-in adapters register and honour the adapter contract."""
from __future__ import annotations

import pytest

from facekit.datasets import DatasetAdapter, dataset_class, get_dataset, list_datasets
from facekit.frames.select import parse_frame_spec

BUILTIN = {"ck+": "last:3", "oulu-casia": "last:3", "mmi": "middle:3", "bu-4dfe": "all", "jaffe": "all",
           "folder": "all", "video": "middle:3"}
FIXTURE_TREE = {"ck+": "ck+", "oulu-casia": "oulu-casia", "mmi": "mmi", "bu-4dfe": "bu-4dfe",
                "jaffe": "jaffe", "folder": "folder", "video": "video"}


class TestBuiltinRegistry:
    def test_all_registered(self):
        assert set(BUILTIN) <= set(list_datasets())

    @pytest.mark.parametrize("name", sorted(BUILTIN))
    def test_class_attributes(self, name):
        cls = dataset_class(name)
        assert issubclass(cls, DatasetAdapter)
        assert cls.name == name and cls.description and cls.__doc__
        assert cls.default_frames == BUILTIN[name]
        parse_frame_spec(cls.default_frames)
        assert isinstance(cls.options, dict)

    @pytest.mark.parametrize("name", sorted(BUILTIN))
    def test_unknown_option(self, name):
        with pytest.raises(ValueError, match="has no option 'bogus'"):
            get_dataset(name, bogus=1)


class TestScanContract:
    @pytest.mark.parametrize("name", sorted(BUILTIN))
    def test_fixture_scan_contract(self, name, fixtures_dir):
        result = get_dataset(name).scan(fixtures_dir / FIXTURE_TREE[name])
        assert result.sequences, "every fixture tree yields sequences"
        assert len(set(result.labels)) == len(result.labels)
        assert all(label == label.lower() for label in result.labels)
        names = [s.name for s in result.sequences]
        assert len(set(names)) == len(names)
        assert all(s.label in result.labels for s in result.sequences)
        assert len({s.label for s in result.sequences}) >= 2 and len({s.subject for s in result.sequences}) >= 2
        for seq in result.sequences:
            assert [f.index for f in seq.frames] == list(range(len(seq.frames)))

    @pytest.mark.parametrize("name", sorted(BUILTIN))
    def test_root_as_string(self, name, fixtures_dir):
        result = get_dataset(name).scan(str(fixtures_dir / FIXTURE_TREE[name]))
        assert result.sequences
