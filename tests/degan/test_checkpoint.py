from __future__ import annotations

from pathlib import Path

import pytest
import torch

from degan import checkpoint as ck_mod
from degan.checkpoint import load_checkpoint, save_checkpoint
from degan.errors import CheckpointError


def _payload(v: float) -> dict:
    return {"stage": "gan", "epoch": 1, "models": {"m": {"w": torch.full((3,), v)}}, "config": {}, "meta": {}}


class TestCheckpoint:
    def test_round_trip(self, tmp_path: Path) -> None:
        p = save_checkpoint(tmp_path / "a" / "c.pt", _payload(1.0))
        d = load_checkpoint(p)
        assert d["format"] == ck_mod.FORMAT and torch.equal(d["models"]["m"]["w"], torch.ones(3))

    def test_failed_write_keeps_previous(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        p = save_checkpoint(tmp_path / "c.pt", _payload(1.0))

        def boom(obj: object, f: object) -> None:
            Path(f).write_bytes(b"partial")          # type: ignore[arg-type]
            raise KeyboardInterrupt
        monkeypatch.setattr(ck_mod.torch, "save", boom)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(p, _payload(2.0))
        monkeypatch.undo()
        assert torch.equal(load_checkpoint(p)["models"]["m"]["w"], torch.ones(3))
        assert [q.name for q in tmp_path.iterdir()] == ["c.pt"]        # no temporary left behind

    @pytest.mark.parametrize("content", [b"", b"garbage" * 10, None])
    def test_corrupt(self, tmp_path: Path, content: bytes | None) -> None:
        p = tmp_path / "c.pt"
        if content is None:
            save_checkpoint(p, _payload(1.0))
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        else:
            p.write_bytes(content)
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(p)

    def test_not_a_degan_checkpoint(self, tmp_path: Path) -> None:
        p = tmp_path / "c.pt"
        torch.save({"state_dict": {}}, p)
        with pytest.raises(CheckpointError, match="not a degan checkpoint"):
            load_checkpoint(p)
        with pytest.raises(CheckpointError, match="does not exist"):
            load_checkpoint(tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def run(canvas_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DE-GAN run (``run``) and a baseline run (``base`` beside it) of fold 1."""
    from degan.presets import get_preset
    from degan.train import run_cv
    out = tmp_path_factory.mktemp("ck") / "run"
    run_cv(canvas_file, get_preset("tiny"), out, folds=[1], progress=False)
    run_cv(canvas_file, get_preset("tiny").replace(method="baseline"), out.parent / "base", folds=[1],
           progress=False)
    return out


class TestNetworksFromCheckpoints:
    """build_networks / load_fold_model / load_generator: the networks of a finished fold."""

    def test_degan_and_baseline(self, run: Path) -> None:
        from degan.checkpoint import build_networks, checkpoint_method, fold_checkpoint, load_fold_model
        from degan.models import DeganNets
        state = load_checkpoint(fold_checkpoint(run, 1))
        nets = build_networks(state)
        assert isinstance(nets, DeganNets) and not nets.local.training and checkpoint_method(state) == "degan"
        x = torch.zeros(2, 1, 16, 16)
        torch.testing.assert_close(load_fold_model(state)(x)[-1], nets.classify(x)[-1])
        base = load_checkpoint(fold_checkpoint(run.parent / "base", 1))
        assert checkpoint_method(base) == "baseline" and load_fold_model(base)(x).shape == (2, 3)

    def test_earlier_meta_and_mismatched_weights(self, run: Path) -> None:
        from degan.checkpoint import build_networks, checkpoint_method, fold_checkpoint
        state = load_checkpoint(fold_checkpoint(run, 1))
        state["meta"]["model"] = state["meta"].pop("method")              # as earlier versions wrote it
        assert checkpoint_method(state) == "degan"
        state["config"]["arch"]["width"] = 0.25
        with pytest.raises(CheckpointError, match=r"tensor G\.encoder\.\S+ has shape \(\d+, "):
            build_networks(state, where="ck.pt")

    def test_generator(self, run: Path) -> None:
        from degan.checkpoint import load_generator
        from degan.errors import RunDirError
        G, meta, cfg = load_generator(run)
        assert meta["fold"] == 1 and cfg.preset == "tiny" and not G.training
        with pytest.raises(RunDirError, match="fold 0"):
            load_generator(run, fold=0)
        with pytest.raises(RunDirError, match="baseline"):
            load_generator(run.parent / "base")


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears if the payload runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def unsafe_checkpoint(path: Path, marker: Path, base: dict | None = None) -> Path:
    """A checkpoint (``base``'s payload, or a minimal one) whose meta carries a ``__reduce__``
    payload that would create ``marker``; written with plain torch.save, as an attacker would."""
    data = dict(base or {"format": ck_mod.FORMAT, "version": 1, **_payload(1.0)})
    data["meta"] = {**data.get("meta", {}), "note": _Payload(marker)}
    torch.save(data, path)
    return path


class TestSafeLoading:
    def test_a_reduce_payload_is_refused_and_never_runs(self, tmp_path: Path) -> None:
        live = unsafe_checkpoint(tmp_path / "live.pt", tmp_path / "proof")
        torch.load(live, weights_only=False)                     # the payload is live: unsafe loading runs it
        assert (tmp_path / "proof").exists()
        marker = tmp_path / "marker"
        p = unsafe_checkpoint(tmp_path / "c.pt", marker)
        with pytest.raises(CheckpointError) as exc:
            load_checkpoint(p)
        assert str(exc.value) == (f"{p}: refused: holds a Python object degan never stores (io.open); "
                                  "not loaded, nothing in it was run")
        assert not marker.exists()

    def test_numpy_values_are_saved_as_plain_values(self, tmp_path: Path) -> None:
        import numpy as np
        payload = {**_payload(1.0), "metrics": {"accuracy": np.float64(50.0), "n": np.int64(4),
                                                "confusion": np.eye(2, dtype=np.int64), "name": np.str_("a"),
                                                "ok": np.bool_(True), "shape": (np.int32(2), 3)}}
        d = load_checkpoint(save_checkpoint(tmp_path / "c.pt", payload))      # weights_only=True reads it
        m = d["metrics"]
        assert m == {"accuracy": 50.0, "n": 4, "confusion": [[1, 0], [0, 1]], "name": "a", "ok": True, "shape": (2, 3)}
        assert type(m["accuracy"]) is float and type(m["n"]) is int and type(m["name"]) is str

    def test_other_objects_are_not_saved(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="payload/meta/x: a builtins.object cannot go into a checkpoint"):
            save_checkpoint(tmp_path / "c.pt", {**_payload(1.0), "meta": {"x": object()}})
        assert not (tmp_path / "c.pt").exists()

    def test_module_state_keeps_its_metadata(self) -> None:
        sd = torch.nn.BatchNorm1d(2).state_dict()
        assert ck_mod.plain_payload(sd) is sd                     # nothing to change: the same object


class TestLoadWeights:
    def test_wrong_shape_missing_and_unknown_tensors(self, tmp_path: Path) -> None:
        from degan.checkpoint import load_weights
        net = torch.nn.Linear(3, 2)
        good = {k: v.clone() for k, v in net.state_dict().items()}
        load_weights(net, good, tmp_path / "c.pt", "m")
        with pytest.raises(CheckpointError) as exc:
            load_weights(net, {**good, "weight": torch.zeros(2, 4)}, tmp_path / "c.pt", "m")
        assert str(exc.value) == (f"{tmp_path / 'c.pt'}: tensor m.weight has shape (2, 4), the network's is (2, 3) "
                                  "(another configuration or data file?)")
        with pytest.raises(CheckpointError, match="tensor m.bias is missing"):
            load_weights(net, {"weight": good["weight"]}, "c.pt", "m")
        with pytest.raises(CheckpointError, match="tensor m.extra is not in the network"):
            load_weights(net, {**good, "extra": torch.zeros(1)}, "c.pt", "m")
        with pytest.raises(CheckpointError, match="weights of m are not a state dict"):
            load_weights(net, None, "c.pt", "m")  # type: ignore[arg-type]


class TestCheckpointData:
    def test_recorded_fingerprint_is_compared(self, canvas_file: Path, no_folds_file: Path) -> None:
        from degan.checkpoint import check_checkpoint_data
        from degan.data.fingerprint import data_fingerprint
        fp = data_fingerprint(canvas_file)
        assert check_checkpoint_data({"meta": {"fingerprint": fp.to_dict()}}, fp, "c.pt") is True
        assert check_checkpoint_data({"meta": {}}, fp, "c.pt") is False          # written before fingerprints
        with pytest.raises(CheckpointError, match=r"^c.pt: .* is not the data it was trained on .*folds differ"):
            check_checkpoint_data({"meta": {"fingerprint": fp.to_dict()}}, data_fingerprint(no_folds_file), "c.pt")
        with pytest.raises(CheckpointError, match="malformed data fingerprint"):
            check_checkpoint_data({"meta": {"fingerprint": {"file": 1}}}, fp, "c.pt")
