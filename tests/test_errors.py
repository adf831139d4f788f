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


class TestPicklableException:
    def test_a_picklable_exception_is_kept(self):
        from facekit.errors import FileError, picklable_exception
        e = FileError("x.png", "bad")
        assert picklable_exception(e) is e

    def test_an_unpicklable_one_becomes_a_runtime_error_with_its_type_and_message(self):
        from facekit.errors import picklable_exception

        class Local(Exception):       # a local class cannot be pickled
            pass

        got = picklable_exception(Local("half a frame"))
        assert type(got) is RuntimeError and str(got) == "Local: half a frame"
