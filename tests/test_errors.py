from __future__ import annotations

import inspect
import pickle

import pytest

import facekit.errors as fe


def _file_errors() -> list[type[fe.FileError]]:
    return [c for _, c in inspect.getmembers(fe, inspect.isclass) if issubclass(c, fe.FileError)]


class TestFileError:
    def test_message_names_file_and_reason(self) -> None:
        e = fe.ImageReadError("raw/S010/001.png", "not an image")
        assert str(e) == "raw/S010/001.png: not an image" and e.path == "raw/S010/001.png"

    @pytest.mark.parametrize("cls", _file_errors(), ids=lambda c: c.__name__)
    def test_survives_pickling(self, cls: type[fe.FileError]) -> None:
        """Errors raised in worker processes reach the parent with their type, path and reason."""
        e = pickle.loads(pickle.dumps(cls("a/b.h5", "broken")))
        assert type(e) is cls and (e.path, e.reason, str(e)) == ("a/b.h5", "broken", "a/b.h5: broken")
