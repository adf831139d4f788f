from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from degan.data import PAPER_VIEWS, all_labelled_split, make_split, read_file_info, training_views
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


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 subjects x 4 faces, 3 classes (subjects differ in their class mix), folds k=3."""
    from ..conftest import make_file
    return make_file(tmp_path_factory.mktemp("many") / "faces.h5", n_subjects=24, faces_per_subject=4)


class TestValidationSplit:
    def test_subject_disjoint_from_training_and_test(self, many: Path) -> None:
        info = read_file_info(many)
        cfg = get_preset("tiny").replace({"data.val_fraction": 0.25})
        for fold in range(info.k):
            plain, sp = make_split(info, fold, get_preset("tiny")), make_split(info, fold, cfg)
            train_s, val_s, test_s = (set(info.subject[ix].tolist()) for ix in (sp.train, sp.val, sp.test))
            assert val_s and not val_s & train_s and not val_s & test_s
            assert train_s | val_s == set(info.subject[plain.train].tolist())   # held out of the training subjects
            assert sp.val_subjects == [info.subjects[s] for s in sorted(val_s)]
            assert len(val_s) == round(len(train_s | val_s) / 4)
            assert (sp.identity[sp.val] == -1).all() and sp.n_identities == len(train_s)   # not trained on
            np.testing.assert_array_equal(sp.test, plain.test)

    def test_stratified_by_expression(self, many: Path) -> None:
        info = read_file_info(many)
        sp = make_split(info, 0, get_preset("tiny").replace({"data.val_fraction": 0.25}))
        share = lambda ix: np.bincount(info.label[ix], minlength=3) / len(ix)   # noqa: E731
        assert np.abs(share(sp.val) - share(sp.train)).max() < 0.1

    def test_fixed_per_fold_whatever_the_seed_or_setting(self, many: Path) -> None:
        info = read_file_info(many)
        cfg = get_preset("tiny").replace({"data.val_fraction": 0.25})
        a = make_split(info, 0, cfg)
        b = make_split(info, 0, cfg.replace({"train.seed": 5, "stage2.lr": 0.1}))
        np.testing.assert_array_equal(a.val, b.val)
        np.testing.assert_array_equal(a.train, b.train)

    def test_chosen_like_the_test_samples(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)                   # 20 stored copies per face, 6 subjects, k=3
        cfg = get_preset("tiny").replace({"data.val_fraction": 0.5})
        sp = make_split(info, 0, cfg)
        assert (info.patch[sp.val] == 0).all() and (info.angle[sp.val] == 0).all() and (info.flip[sp.val] == 0).all()
        assert len(sp.train) == 20 * len(np.unique(info.face[sp.train]))          # every stored copy trains
        every = make_split(info, 0, cfg.replace({"eval.test_views": "all"}))
        assert len(every.val) == 20 * len(sp.val)
        assert sp.validation().test is sp.val and sp.validation().train is sp.train

    def test_none_by_default(self, canvas_file: Path) -> None:
        sp = make_split(read_file_info(canvas_file), 0, get_preset("tiny"))
        assert len(sp.val) == 0 and sp.val_subjects == []

    def test_too_few_subjects(self, canvas_file: Path) -> None:
        cfg = get_preset("tiny").replace({"data.val_fraction": 0.2})          # 1 in 5 of 4 training subjects
        with pytest.raises(FoldError, match="val_fraction=0.2: fold 0 has 4 training subjects"):
            make_split(read_file_info(canvas_file), 0, cfg)


class TestTrainingViews:
    def test_paper_views_on_a_canvas_file(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("paper"))
        assert PAPER_VIEWS == 110 and training_views(info, get_preset("paper")) == 110
        assert sp.views == 110 and sp.n_train_items == 110 * len(sp.train)
        online = make_split(info, 0, get_preset("tiny"))
        assert online.views == 1 and online.n_train_items == len(online.train)

    def test_stored_copies_are_the_views(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)
        sp = make_split(info, 0, get_preset("paper"))
        assert sp.views == 1 and len(sp.train) == 20 * len(np.unique(info.face[sp.train]))

    def test_pretraining_split(self, no_folds_file: Path) -> None:
        info = read_file_info(no_folds_file)
        assert all_labelled_split(info).views == 1
        assert all_labelled_split(info, get_preset("paper")).n_train_items == 110 * int((info.label >= 0).sum())
