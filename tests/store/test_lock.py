"""OUT.lock: one run per output, stale locks taken over, shards of one run side by side."""
import json
import os
import subprocess
import sys
import time

import pytest

from facekit.errors import FileError, OutputLockedError
from facekit.store import lock_output
from facekit._fs import this_host
from facekit.store._lock import FileLock, lock_path, shard_lock_path


@pytest.fixture
def other_process():
    """Start a process that holds a lock on an output until the test ends (``.pid``)."""
    procs = []

    def start(out, **kw):
        code = ("import sys; from facekit.store import lock_output\n"
                f"lock = lock_output({str(out)!r}, doing='prepare', **{kw!r})\n"
                "print('ready', flush=True); sys.stdin.read(); lock.release()\n")
        p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stdin.close()
        p.wait(30)


class TestFileLock:
    def test_holds_pid_host_and_start_and_is_removed_on_release(self, tmp_path):
        out = tmp_path / "o.h5"
        with lock_output(out, doing="prepare"):
            info = json.loads(lock_path(out).read_text())
            assert info["pid"] == os.getpid() and info["host"] == this_host() and info["started"]
            assert info["doing"] == "prepare"
        assert not lock_path(out).exists() and list(tmp_path.iterdir()) == []

    def test_a_second_process_is_refused_naming_the_holder(self, tmp_path, other_process):
        out = tmp_path / "o.h5"
        holder = other_process(out)
        with pytest.raises(OutputLockedError) as err:
            lock_output(out, doing="prepare")
        msg = str(err.value)
        assert msg.startswith(f"{out}: locked by pid {holder.pid} on {this_host()} (started ")
        assert "a prepare run" in msg

    def test_a_stale_lock_of_a_dead_process_is_taken_over(self, tmp_path, dead_pid):
        out = tmp_path / "o.h5"
        lock_path(out).write_text(json.dumps({"pid": dead_pid, "host": this_host(), "started": "x"}))
        with lock_output(out, doing="prepare"):
            assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()

    def test_a_lock_of_another_host_is_respected(self, tmp_path):
        out = tmp_path / "o.h5"
        lock_path(out).write_text(json.dumps({"pid": 1234, "host": "elsewhere", "started": "t"}))
        with pytest.raises(OutputLockedError, match=f"pid 1234 on elsewhere .*delete {lock_path(out)}"):
            lock_output(out, doing="prepare")

    def test_racing_takeovers_of_a_stale_lock_leave_one_holder(self, tmp_path, dead_pid):
        """Four processes find the same stale lock at once: exactly one may hold it."""
        out = tmp_path / "o.h5"
        lock_path(out).write_text(json.dumps({"pid": dead_pid, "host": this_host(), "started": "x"}))
        code = (f"import sys, time; from facekit.store import lock_output\n"
                f"from facekit.errors import OutputLockedError\n"
                f"while time.time() < {time.time() + 1.5}: pass\n"
                f"try:\n    l = lock_output({str(out)!r}, doing='prepare')\n"
                f"except OutputLockedError:\n    print('refused'); sys.exit(0)\n"
                f"print('held'); sys.stdout.flush(); time.sleep(2); l.release()\n")
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
        results = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        assert results == ["held", "refused", "refused", "refused"]

    def test_unwritable_folder_names_the_output(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(FileError, match="cannot write in"):
            lock_output(blocker / "o.h5", doing="prepare")

    def test_file_lock_reports_its_holder(self, tmp_path, other_process):
        out = tmp_path / "o.h5"
        assert FileLock(lock_path(out), out).holder() is None
        holder = other_process(out)
        assert FileLock(lock_path(out), out).holder()["pid"] == holder.pid


class TestShardLocks:
    def test_shards_of_one_run_work_side_by_side(self, tmp_path, other_process):
        out = tmp_path / "o.h5"
        other_process(out, shard=(0, 2), fingerprint="f")
        with lock_output(out, doing="prepare", shard=(1, 2), fingerprint="f"):
            assert shard_lock_path(out, (1, 2)).exists()

    def test_the_same_shard_twice_is_refused(self, tmp_path, other_process):
        out = tmp_path / "o.h5"
        other_process(out, shard=(0, 2), fingerprint="f")
        with pytest.raises(OutputLockedError, match="locked by pid"):
            lock_output(out, doing="prepare", shard=(0, 2), fingerprint="f")

    @pytest.mark.parametrize("shard,fingerprint", [((1, 3), "f"), ((1, 2), "g")], ids=["other-n", "other-settings"])
    def test_shards_of_another_run_are_refused(self, tmp_path, other_process, shard, fingerprint):
        out = tmp_path / "o.h5"
        other_process(out, shard=(0, 2), fingerprint="f")
        with pytest.raises(OutputLockedError, match="with other settings"):
            lock_output(out, doing="prepare", shard=shard, fingerprint=fingerprint)

    def test_a_whole_run_excludes_shards_and_the_other_way_round(self, tmp_path, other_process):
        out = tmp_path / "o.h5"
        other_process(out, shard=(0, 2), fingerprint="f")
        with pytest.raises(OutputLockedError):
            lock_output(out, doing="prepare")
        assert not lock_path(out).exists()              # the refused run leaves nothing behind
        out2 = tmp_path / "p.h5"
        other_process(out2)
        with pytest.raises(OutputLockedError):
            lock_output(out2, doing="prepare", shard=(1, 2), fingerprint="f")
        assert not shard_lock_path(out2, (1, 2)).exists()
