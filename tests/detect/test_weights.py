import hashlib
import io
import urllib.error

import pytest

from facekit.detect import weights as W
from facekit.errors import ChecksumError, InvalidModelError, ModelNotFoundError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEKIT_MODEL", raising=False)
    monkeypatch.setenv("FACEKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _task(path, members=W.FACE_LANDMARKER.members):
    """A stand-in .task file: a zip archive with the model's member names."""
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        for m in members:
            z.writestr(m, b"tflite")
    return path


def _fake(content: bytes) -> W.ModelWeights:
    return W.ModelWeights("fake", "https://example.invalid/m/fake.task", hashlib.sha256(content).hexdigest(),
                          len(content), "none")


class TestResolveModelPath:
    def test_explicit_path_wins(self, clean_env, monkeypatch, tmp_path):
        f = _task(tmp_path / "m.task")
        monkeypatch.setenv("FACEKIT_MODEL", "/nonexistent")
        assert W.resolve_model_path(f) == f

    def test_env_variable(self, clean_env, monkeypatch, tmp_path):
        f = _task(tmp_path / "env.task")
        monkeypatch.setenv("FACEKIT_MODEL", str(f))
        assert W.resolve_model_path() == f

    @pytest.mark.parametrize("content", [b"", bytes(range(256)) * 64, b"<html>Not Found</html>"],
                             ids=["empty", "random-bytes", "html"])
    def test_a_file_that_is_not_a_task_model_is_refused_by_name(self, clean_env, tmp_path, content):
        f = tmp_path / "bad.task"
        f.write_bytes(content)
        with pytest.raises(InvalidModelError, match="bad.task: not a MediaPipe .task model"):
            W.resolve_model_path(f)

    def test_a_zip_without_the_landmarker_models_is_refused(self, clean_env, tmp_path, monkeypatch):
        f = _task(tmp_path / "other.task", members=("pose_detector.tflite",))
        monkeypatch.setenv("FACEKIT_MODEL", str(f))
        with pytest.raises(InvalidModelError, match="has no face_detector.tflite"):
            W.resolve_model_path()

    def test_missing_explicit_path_names_it(self, clean_env):
        with pytest.raises(ModelNotFoundError, match="/no/such/file.task"):
            W.resolve_model_path("/no/such/file.task")

    def test_cache_hit_is_verified(self, clean_env):
        fake = _fake(b"model-bytes")
        cached = W.cache_dir() / "models" / fake.filename
        cached.parent.mkdir(parents=True)
        cached.write_bytes(b"model-bytes")
        assert W.resolve_model_path(weights=fake, download=False) == cached

    def test_corrupt_cache_is_discarded(self, clean_env):
        fake = _fake(b"model-bytes")
        cached = W.cache_dir() / "models" / fake.filename
        cached.parent.mkdir(parents=True)
        cached.write_bytes(b"model-bytez")
        with pytest.raises(ModelNotFoundError):
            W.resolve_model_path(weights=fake, download=False)
        assert not cached.exists()

    def test_download_checks_sha_and_writes_atomically(self, clean_env, monkeypatch):
        fake = _fake(b"downloaded")
        monkeypatch.setattr(W.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"downloaded"))
        path = W.resolve_model_path(weights=fake)
        assert path.read_bytes() == b"downloaded"
        assert [p.name for p in path.parent.iterdir()] == [fake.filename]

    def test_download_with_wrong_checksum_leaves_nothing(self, clean_env, monkeypatch):
        fake = _fake(b"expected")
        monkeypatch.setattr(W.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"tampered"))
        with pytest.raises(ChecksumError, match="sha256"):
            W.resolve_model_path(weights=fake)
        assert not any((W.cache_dir() / "models").iterdir())

    def test_a_cache_that_cannot_be_written_says_so(self, clean_env, monkeypatch):
        fake = _fake(b"downloaded")
        monkeypatch.setattr(W.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"downloaded"))
        (W.cache_dir() / "models").mkdir(parents=True)
        monkeypatch.setattr(W, "atomic_output", _unwritable)
        with pytest.raises(ModelNotFoundError, match="the download cannot be stored .*--landmarker PATH"):
            W.resolve_model_path(weights=fake)

    def test_offline_error_says_where_to_put_the_file(self, clean_env, monkeypatch):
        def offline(url, timeout):
            raise urllib.error.URLError("no network")
        monkeypatch.setattr(W.urllib.request, "urlopen", offline)
        with pytest.raises(ModelNotFoundError) as err:
            W.resolve_model_path()
        msg = str(err.value)
        assert str(W.cache_dir() / "models" / "face_landmarker.task") in msg
        assert W.FACE_LANDMARKER.url in msg and "FACEKIT_MODEL" in msg and "--landmarker PATH" in msg
        assert "--model" not in msg

    def test_shared_model_matches_pinned_checksum(self, model_path):
        assert W.sha256_file(model_path) == W.FACE_LANDMARKER.sha256


def _unwritable(path, **kw):
    from facekit.errors import FileError
    raise FileError(path, "cannot write in its folder (Read-only file system)")
