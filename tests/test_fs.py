"""facekit._fs: atomic outputs, temporaries of killed processes, the lock file, printable names."""
import json
import os
import subprocess
import sys
import time

import pytest

from facekit._fs import (FileLock, atomic_output, pid_alive, printable, remove_stale_temps, temp_name, temp_owner,
                         this_host, write_json_atomic)
from facekit.errors import FileError, OutputLockedError


class TestAtomicOutput:
    def test_appears_only_on_success(self, tmp_path):
        target = tmp_path / "out.bin"
        with pytest.raises(RuntimeError):
            with atomic_output(target) as tmp:
                tmp.write_bytes(b"half")
                raise RuntimeError("boom")
        assert not target.exists() and list(tmp_path.iterdir()) == []
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"done")
        assert target.read_bytes() == b"done"

    def test_copy_from_keeps_original_on_interrupt(self, tmp_path):
        target = tmp_path / "f.bin"
        target.write_bytes(b"original")
        with pytest.raises(KeyboardInterrupt):
            with atomic_output(target, copy_from=target) as tmp:
                assert tmp.read_bytes() == b"original"
                tmp.write_bytes(b"changed")
                raise KeyboardInterrupt
        assert target.read_bytes() == b"original"

    def test_without_sync_or_cleaning(self, tmp_path, dead_pid):
        stale = tmp_path / f"f.png.tmp-{this_host()}-{dead_pid}"
        stale.write_text("half")
        with atomic_output(tmp_path / "f.png", sync=False, clean=False) as tmp:
            tmp.write_bytes(b"png")
        assert (tmp_path / "f.png").read_bytes() == b"png" and stale.exists()     # left for the run's cleaning
        assert remove_stale_temps(tmp_path) == [stale] and not stale.exists()

    def test_json(self, tmp_path):
        write_json_atomic(tmp_path / "run.json", {"b": 1, "a": [1, 2]})
        assert json.loads((tmp_path / "run.json").read_text()) == {"a": [1, 2], "b": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


class TestTemporaries:
    """Item 12 of issue 24: temporaries carry host and pid; stale ones (dead pid, this host) go."""

    def test_names_and_owners(self, tmp_path):
        t = temp_name(tmp_path / "out.h5")
        assert temp_owner(t.name) == (this_host(), os.getpid())
        assert temp_owner("out.h5.tmp-1234") == (None, 1234)
        assert temp_owner("out.h5") is None and temp_owner("out.h5.tmp-x") is None

    def test_atomic_output_removes_stale_temporaries_of_its_file(self, tmp_path):
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale = [tmp_path / f"f.csv.tmp-{this_host()}-{dead.pid}", tmp_path / f"f.csv.tmp-{dead.pid}"]
        other = [tmp_path / f"g.csv.tmp-{this_host()}-{dead.pid}",           # another file's: not ours
                 tmp_path / f"f.csv.tmp-elsewhere-{dead.pid}",               # another host's: cannot tell
                 tmp_path / f"f.csv.tmp-{this_host()}-{os.getppid()}"]       # a live process's
        for p in stale + other:
            p.write_text("half")
        with atomic_output(tmp_path / "f.csv") as tmp:
            tmp.write_text("done")
        assert (tmp_path / "f.csv").read_text() == "done"
        assert not any(p.exists() for p in stale) and all(p.exists() for p in other)

    def test_unwritable_folder_is_one_clear_error(self, tmp_path):
        (tmp_path / "file").write_text("")
        with pytest.raises(FileError, match="cannot write in"):
            with atomic_output(tmp_path / "file" / "x.csv"):
                pass

    def test_a_zombie_is_not_alive(self):
        p = subprocess.Popen([sys.executable, "-c", "pass"])
        deadline = time.time() + 30
        while time.time() < deadline:            # exited, not yet reaped (no wait() yet): a zombie
            with open(f"/proc/{p.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert not pid_alive(p.pid)
        p.wait()
        assert not pid_alive(p.pid) and pid_alive(os.getpid())


class TestFileLock:
    """The lock itself (facekit.store's OUT.lock rules on top of it: tests/store/test_lock.py)."""

    def test_held_then_refused_then_released(self, tmp_path):
        path = tmp_path / "lock"
        with FileLock(path, tmp_path / "out.csv", {"doing": "analyze"}) as lock:
            assert lock.held and json.loads(path.read_text())["doing"] == "analyze"
            code = ("import sys; from facekit._fs import FileLock\n"
                    "from facekit.errors import OutputLockedError\n"
                    f"try:\n    FileLock({str(path)!r}, {str(tmp_path / 'out.csv')!r}).acquire()\n"
                    "except OutputLockedError as e:\n    print(e)")
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            assert r.stdout.startswith(f"{tmp_path / 'out.csv'}: locked by pid {os.getpid()} on {this_host()}")
            assert "an analyze run" in r.stdout, r.stderr
        assert not path.exists() and list(tmp_path.iterdir()) == []

    def test_a_lock_of_a_dead_process_is_taken_over(self, tmp_path, dead_pid):
        path = tmp_path / "lock"
        path.write_text(json.dumps({"pid": dead_pid, "host": this_host()}))
        with FileLock(path, tmp_path):
            assert json.loads(path.read_text())["pid"] == os.getpid()

    def test_a_live_process_without_flock_is_respected(self, tmp_path):
        """A lock file of a live pid (written by hand, or on a file system without flock)."""
        path = tmp_path / "lock"
        path.write_text(json.dumps({"pid": os.getppid(), "host": this_host()}))
        with pytest.raises(OutputLockedError, match=f"locked by pid {os.getppid()}"):
            FileLock(path, tmp_path).acquire()


class TestPrintable:
    def test_names(self):
        assert printable("caf\udce9.png") == "caf\\xe9.png"
        assert printable("café.png") == "café.png" and printable(b"a\xffb") == "a\\xffb"
        assert printable("\ud800x") == "\\ud800x"                # a lone surrogate that is no byte
