from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from degan.data import all_labelled_split, make_split, read_file_info
from degan.errors import FoldError, NoFoldsError
from degan.presets import get_preset


class TestMakeSplit:
    @pytest.mark.parametrize("which", ["canvas_file", "paper_file"])
    def test_no_subject_or_face_shared(self, which: str, request: pytest.FixtureRequest) -> None:
        info = read_file_info(request.getfixturevalue(which))
        cfg = get_preset("tiny")
        for fold in range(info.k):
            sp = make_split(info, fold, cfg)
            assert not set(info.subject[sp.train]) & set(info.subject[sp.test])
            assert not set(info.face[sp.train]) & set(info.face[sp.test])
            assert (info.fold[sp.test] == fold).all() and (info.fold[sp.train] != fold).all()
            ids = sp.identity[sp.train]
            assert ids.min() == 0 and ids.max() == sp.n_identities - 1
            assert (sp.identity[sp.test] == -1).all()

    def test_paper_file_test_centre_views_only(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)
        sp = make_split(info, 0, get_preset("tiny"))
        assert (info.patch[sp.test] == 0).all() and (info.flip[sp.test] == 0).all()
        assert (info.angle[sp.test] == 0).all()
        assert len(sp.test) == len(np.unique(info.face[sp.test]))
        assert len(sp.train) == 20 * len(np.unique(info.face[sp.train]))       # every stored copy
        all_views = make_split(info, 0, get_preset("tiny").replace({"eval.test_views": "all"}))
        assert len(all_views.test) == 20 * len(sp.test)
        mirror = make_split(info, 0, get_preset("tiny").replace(test_views="mirror"))
        assert len(mirror.test) == 2 * len(sp.test) and sorted(info.flip[mirror.test].tolist()).count(1) == len(sp.test)
        assert (info.patch[mirror.test] == 0).all() and (info.angle[mirror.test] == 0).all()
        online = make_split(info, 0, get_preset("tiny").replace({"data.augment": "online"}))
        assert len(online.train) == len(np.unique(info.face[sp.train]))        # centre views only

    def test_leaky_folds_are_cleaned(self, tmp_path: Path) -> None:
        from ..conftest import make_file
        p = make_file(tmp_path / "leak.h5")
        with h5py.File(p, "r+") as f:
            fold = f["folds/fold"][()]
            fold[0] = (fold[0] + 1) % 3          # one sample of a subject in another fold
            f["folds/fold"][...] = fold
        info = read_file_info(p)
        with pytest.warns(UserWarning, match="left out of training"):
            sp = make_split(info, int(info.fold[0]), get_preset("tiny"))
        assert not set(info.subject[sp.train]) & set(info.subject[sp.test]) and sp.dropped > 0

    def test_no_folds(self, no_folds_file: Path) -> None:
        with pytest.raises(NoFoldsError, match="facekit folds"):
            make_split(read_file_info(no_folds_file), 0, get_preset("tiny"))

    @pytest.mark.parametrize("fold", [-1, 3, 99])
    def test_fold_out_of_range(self, canvas_file: Path, fold: int) -> None:
        with pytest.raises(FoldError, match="out of range"):
            make_split(read_file_info(canvas_file), fold, get_preset("tiny"))


class TestAllLabelledSplit:
    def test_every_labelled_sample_trains(self, no_folds_file: Path) -> None:
        info = read_file_info(no_folds_file)
        sp = all_labelled_split(info)
        assert sp.fold == -1 and len(sp.train) == int((info.label >= 0).sum())
        assert sp.n_identities == len(np.unique(info.subject[sp.train]))
        assert sorted(set(sp.identity[sp.train].tolist())) == list(range(sp.n_identities))
