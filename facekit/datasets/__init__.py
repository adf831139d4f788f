"""Dataset adapters behind a registry.

An adapter lists the sequences of a dataset in its released layout (run from the
repository root, on the CK+-layout fixture):

>>> from pathlib import Path
>>> from facekit.datasets import get_dataset, list_datasets
>>> list_datasets()
['bu-4dfe', 'ck+', 'folder', 'jaffe', 'mmi', 'oulu-casia', 'video']
>>> result = get_dataset("ck+").scan(Path("fixtures/ck+"))
>>> len(result.sequences), len(result.skipped)    # one sequence has no emotion label
(8, 1)

Other projects register their own layouts::

    @register_dataset
    class MyData(DatasetAdapter):
        name = "mydata"
        default_frames = "last:1"
        def scan(self, root): ...
"""
from __future__ import annotations

import difflib
from typing import Any

from ..errors import UnknownDatasetError
from ._base import DatasetAdapter, Frame, ScanResult, Sequence, Skipped, natural_key

__all__ = [
    "DatasetAdapter", "Frame", "Sequence", "Skipped", "ScanResult", "natural_key",
    "register_dataset", "get_dataset", "list_datasets", "dataset_class",
]

_REGISTRY: dict[str, type[DatasetAdapter]] = {}


def register_dataset(cls: type[DatasetAdapter]) -> type[DatasetAdapter]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, DatasetAdapter)):
        raise TypeError("register_dataset expects a DatasetAdapter subclass")
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    key = cls.name.lower()
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"a dataset named {cls.name!r} is already registered ({_REGISTRY[key].__name__})")
    _REGISTRY[key] = cls
    return cls


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY)


def dataset_class(name: str) -> type[DatasetAdapter]:
    """The adapter class registered under ``name`` (case-insensitive)."""
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownDatasetError(
            f"unknown dataset {name!r}{hint} (known: {', '.join(list_datasets())})") from None


def get_dataset(name: str, **options: Any) -> DatasetAdapter:
    """An adapter instance for ``name`` configured with ``options``."""
    return dataset_class(name)(**options)


# built-in adapters register themselves on import
from . import _builtin  # noqa: E402,F401
