"""Files of an analysis run (private): atomic writes, the run lock, printable names.

Kept free of h5py (``facekit.store`` has its own atomic writer for HDF5 files).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import FileError

__all__ = ["atomic_path", "write_json_atomic", "RunLock", "LockedError", "printable", "safe_file_name",
           "TEMP_MARK"]

#: marks temporary files: ``<name>.tmp-<pid>``; nothing that reads a run looks at them
TEMP_MARK = ".tmp-"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; when the block ends without an
    exception it is flushed to disk (``sync``) and renamed to ``path`` (atomic on
    POSIX). On an exception (Ctrl-C included) it is removed; a ``kill -9`` leaves
    only a ``*.tmp-<pid>`` file."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TEMP_MARK}{os.getpid()}")
    try:
        yield tmp
        if sync:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str), encoding="utf-8")


class LockedError(FileError):
    """Another live run holds the lock on this output."""


class RunLock:
    """``<dir>/lock``: holds the pid and host of the run that writes the folder.

    A lock left by a process that no longer exists on this host (``kill -9``) is
    taken over; a lock of a live process, or of another host, refuses the run.
    """

    def __init__(self, folder: Path, out: Path) -> None:
        self.path = Path(folder) / "lock"
        self.out = out
        self._held = False

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and not self._stale(owner):
                    raise LockedError(self.out, f"another facekit analyze (pid {owner.get('pid')} on "
                                                f"{owner.get('host')}) is writing it; wait for it to finish "
                                                f"(or delete {self.path} if that run is gone)") from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return
        raise LockedError(self.out, f"cannot take the lock {self.path}")

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None    # half-written or vanished: treat as stale

    @staticmethod
    def _stale(owner: dict) -> bool:
        if owner.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(owner.get("pid", -1)), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        except (OSError, ValueError, TypeError) as exc:
            return getattr(exc, "errno", None) == errno.ESRCH or isinstance(exc, (ValueError, TypeError))
        return False

    def release(self) -> None:
        if self._held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def printable(path: str | os.PathLike) -> str:
    """``path`` as text that can be written as UTF-8: bytes of a file name that are
    not UTF-8 become ``\\xNN`` escapes (``caf\\xe9.png``)."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_UNSAFE = re.compile(r"[^\w.+-]+")


def safe_file_name(name: str) -> str:
    """A one-component file name made from a path: separators become ``__``,
    other characters outside ``[A-Za-z0-9_.+-]`` become ``_``; no leading dots."""
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    parts = ["up" if p == ".." else _UNSAFE.sub("_", p) for p in parts]
    return "__".join(parts).lstrip(".") or "input"
