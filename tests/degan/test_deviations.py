from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from degan.config import SECTIONS, DeganConfig
from degan.deviations import (MEANINGS, TABLE_BEGIN, TABLE_END, deviations, format_value, main, preset_table,
                              replace_table)
from degan.presets import PRESETS, get_preset, list_presets, preset_changes, register_preset

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "degan.md"


class TestDeviations:
    def test_paper_has_none(self) -> None:
        assert deviations(get_preset("paper")) == [] and deviations(DeganConfig()) == []

    def test_every_field_has_a_meaning(self) -> None:
        fields = {f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)}
        assert set(MEANINGS) == fields
        for name, m in MEANINGS.items():
            if isinstance(m, dict):                      # a meaning for each allowed value of a choice
                default = DeganConfig().get(name)
                assert default in m, name

    def test_cpu_rows_are_its_changes(self) -> None:
        cfg = get_preset("cpu")
        rows = {r.field: r for r in deviations(cfg, sections=tuple(SECTIONS))}
        expected = {k for k in preset_changes("cpu") if not k.startswith("runtime.")}
        assert set(rows) == expected
        assert rows["stage1.pretrain"].paper is True and rows["stage1.pretrain"].value is False
        assert "without the paper's pre-training" in rows["stage1.pretrain"].meaning
        assert rows["data.augment"].value == "auto" and "110x shorter" in rows["data.augment"].meaning
        assert rows["arch.image_size"].to_dict() == {"field": "arch.image_size", "paper": 96, "value": 48,
                                                     "meaning": MEANINGS["arch.image_size"]}

    def test_only_what_the_method_reads_and_never_seed_or_runtime(self) -> None:
        cfg = get_preset("paper").replace({"train.seed": 3, "runtime.log_every": 1, "stage1.pretrain": False,
                                           "baseline.epochs": 7})
        assert [r.field for r in deviations(cfg)] == ["stage1.pretrain"]
        base = cfg.replace(method="baseline")
        assert [r.field for r in deviations(base)] == ["baseline.epochs"]

    def test_the_tiny_preset_says_it_does_not_use_the_paper_views(self) -> None:
        rows = {r.field: r.value for r in deviations(get_preset("tiny"), sections=tuple(SECTIONS))}
        assert rows["data.augment"] == "auto"                   # one row: no 110 views per face in tests


class TestPresetTable:
    def test_one_row_per_field_any_preset_changes(self) -> None:
        table = preset_table()
        rows = [ln for ln in table.splitlines()[2:]]
        names = [n for n in list_presets() if n != "paper"]
        changed = {k for n in names for k in preset_changes(n)}
        assert [ln.split("|")[1].strip().strip("`") for ln in rows] == [k for k in DeganConfig().flat()
                                                                       if k in changed]
        for ln in rows:
            cells = [c.strip() for c in ln.split("|")[1:-1]]
            field = cells[0].strip("`")
            assert cells[1] == format_value(DeganConfig().get(field))
            for n, cell in zip(names, cells[2:2 + len(names)]):
                ch = preset_changes(n)
                assert cell == (format_value(ch[field][1]) if field in ch else "=")
            assert cells[-1]                                      # what it means

    def test_docs_table_is_the_presets(self) -> None:
        text = DOCS.read_text()
        assert TABLE_BEGIN in text and TABLE_END in text
        assert replace_table(text, preset_table()) == text, \
            "docs/degan.md's deviation table differs from the presets: python -m degan.deviations --write docs/degan.md"

    def test_a_new_preset_changes_the_table(self, tmp_path: Path) -> None:
        doc = tmp_path / "doc.md"
        doc.write_text(f"before\n{TABLE_BEGIN}\nold\n{TABLE_END}\nafter\n")
        assert main(["--check", str(doc)]) == 1
        assert main(["--write", str(doc)]) == 0 and main(["--check", str(doc)]) == 0
        register_preset("test-short", {"stage1.epochs": 2}, "two stage-1 epochs")
        try:
            assert main(["--check", str(doc)]) == 1 and "`test-short`" in preset_table()
        finally:
            del PRESETS["test-short"]
        assert main(["--check", str(doc)]) == 0
        assert doc.read_text().startswith("before\n") and doc.read_text().endswith(f"{TABLE_END}\nafter\n")

    def test_missing_markers(self, tmp_path: Path) -> None:
        doc = tmp_path / "doc.md"
        doc.write_text("no table\n")
        with pytest.raises(ValueError, match="markers"):
            replace_table(doc.read_text(), "x")
        assert main(["--check", str(doc)]) == 2

    def test_module_entry_point(self) -> None:
        res = subprocess.run([sys.executable, "-m", "degan.deviations", "--check", str(DOCS)], cwd=ROOT,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
