"""The README's shell blocks marked ``<!-- runnable -->`` run as written, from a copy of the
repository root's layout (the fixtures), in order, in one temporary folder."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = "<!-- runnable -->"

#: a marker line, optional blank lines, then a fenced ``bash`` or ``sh`` block
BLOCK = re.compile(r"^" + re.escape(MARKER) + r"[ \t]*\n(?:[ \t]*\n)*```(?:bash|sh)[ \t]*\n(.*?)^```",
                   re.M | re.S)


def runnable_blocks(text: str) -> list[str]:
    """The bodies of the fenced shell blocks that directly follow a runnable marker."""
    return BLOCK.findall(text)


class TestRunnableBlocks:
    def test_extraction(self) -> None:
        text = ("x\n<!-- runnable -->\n```bash\necho a\n```\n```bash\necho b\n```\n"
                "<!-- runnable -->\n\n```sh\necho c\n```\n")
        assert runnable_blocks(text) == ["echo a\n", "echo c\n"]

    def test_every_marker_has_a_block(self) -> None:
        text = README.read_text(encoding="utf-8")
        blocks = runnable_blocks(text)
        assert blocks, "no runnable block in README.md"
        assert len(blocks) == len(re.findall(r"^" + re.escape(MARKER) + r"[ \t]*$", text, re.M))

    def test_blocks_run(self, model_path: Path, tmp_path: Path) -> None:
        pytest.importorskip("torch")  # a block trains degan's tiny preset
        (tmp_path / "fixtures").symlink_to(ROOT / "fixtures", target_is_directory=True)
        env = dict(os.environ, FACEKIT_MODEL=str(model_path), MPLBACKEND="Agg")
        bash = shutil.which("bash")
        assert bash
        for i, block in enumerate(runnable_blocks(README.read_text(encoding="utf-8"))):
            proc = subprocess.run([bash, "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, (f"README runnable block {i} failed ({proc.returncode}):\n"
                                          f"{block}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        assert (tmp_path / "out.h5").is_file() and (tmp_path / "sheet.png").is_file()
        assert (tmp_path / "faces.csv").is_file()
        assert any((tmp_path / "runs").glob("*/metrics.json"))


class TestQuickstartMatchesCI:
    """The README's quickstart block is what .ci/run runs: the install, the main job on the
    fixtures (CI writes its output into a temporary folder) and the test command."""

    def test_same_commands(self) -> None:
        text = README.read_text(encoding="utf-8")
        block = re.search(r"^## Quickstart\n.*?```sh\n(.*?)^```", text, re.M | re.S)
        assert block, "README.md has no Quickstart shell block"
        commands = [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace('"$work/out.h5"', "out.h5")
        assert len(commands) == 3
        for command in commands:
            for part in command.split(" && "):
                assert part in ci, f".ci/run does not run the README's {part!r}"
