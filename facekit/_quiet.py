"""Silence native (C++) log output of MediaPipe / TFLite.

MediaPipe's glog and TFLite write to file descriptor 2 directly, so Python's
``sys.stderr`` cannot catch them. :func:`native_stderr_silenced` points fd 2 at
a temporary file for the duration of a block; if the block raises, what the
native code printed is attached to the exception so nothing useful is lost.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    fd = 2  # native code writes to fd 2 whatever sys.stderr is (pytest capture, notebooks)
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException as exc:
            os.dup2(saved, fd)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text and hasattr(exc, "add_note"):
                exc.add_note("native log:\n" + text[-4000:])
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)
