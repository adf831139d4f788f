"""The shape of degan's imports: no circles, no cross-module private names, facekit torch-free."""
from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEGAN = ROOT / "degan"
#: the project's own packages (other libraries' private names are their business)
OURS = ("degan", "facekit", "facekit_cli", "cli")


def _parse(path: Path) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # e.g. invalid escapes in a script's docstring
        return ast.parse(path.read_text())


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(DEGAN.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside ``if TYPE_CHECKING:`` blocks (not run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    lines.add(sub.lineno)
    return lines


def imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import in a file, module-level or inside functions."""
    tree = _parse(path)
    skip = _type_checking_only(tree)
    package = name if _is_package(name) else name.rpartition(".")[0]
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, [a.name for a in node.names]))
    return out


def degan_graph() -> dict[str, set[str]]:
    """Module -> the degan modules it imports (a name that is a submodule counts as that module)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for module, names in imports(name, path):
            if not module.startswith("degan"):
                continue
            targets = {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
            if not targets or len(targets) < len(names):
                targets.add(module)
            graph[name] |= {t for t in targets if t in MODULES and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_imports(name: str, path: Path, home: str) -> list[str]:
    """Imports of ``_`` names, of private modules outside their package, and ``module._name``
    attribute uses of imported modules, in one file (``home``: the package the file belongs to)."""
    bad: list[str] = []
    tree = _parse(path)
    module_aliases: set[str] = set()
    for module, names in imports(name, path):
        if module.split(".")[0] not in OURS and module.split(".")[0] != home.split(".")[0]:
            continue
        parts = module.split(".")
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__") and ".".join(parts[:i]) != home:
                bad.append(f"{name}: imports private module {module}")
        for n in names:
            if n.startswith("_") and not n.startswith("__"):
                bad.append(f"{name}: imports {module}.{n}")
            elif f"{module}.{n}" in MODULES or module in ("degan", "facekit"):
                module_aliases.add(n)
    for node in ast.walk(tree):
        if isinstance(node, ast.alias) and node.asname:
            module_aliases.add(node.asname)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            bad.append(f"{name}: uses {node.value.id}.{node.attr}")
    return bad


class TestImportGraph:
    def test_every_degan_module_imports(self) -> None:
        code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in MODULES)
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

    def test_no_circle_in_degan(self) -> None:
        graph = degan_graph()
        assert "degan.evaluate" in graph["degan.train.cv"] or "degan.metrics" in graph["degan.train.cv"]
        assert cycles(graph) == []

    def test_the_check_sees_a_circle(self) -> None:
        assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

    def test_no_cross_module_private_imports(self) -> None:
        bad = []
        for name, path in MODULES.items():
            bad += private_imports(name, path, name if _is_package(name) else name.rpartition(".")[0])
        assert bad == []

    def test_bench_and_cli_use_public_api(self) -> None:
        bad = []
        for path in sorted((ROOT / "bench").glob("*.py")):
            bad += [b for b in private_imports(path.stem, path, "") if "private module _machine" not in b]
        bad += private_imports("cli.degan", ROOT / "cli" / "degan.py", "cli")      # its own cli._common: fine
        assert bad == []

    def test_the_check_sees_private_imports(self, tmp_path: Path) -> None:
        f = tmp_path / "m.py"
        f.write_text("from degan.train.steps import _x\nimport facekit.store._atomic\nfrom degan import config\n"
                     "config._private\n")
        assert len(private_imports("x.m", f, "x")) == 3


class TestImportBoundary:
    def test_facekit_never_imports_torch_or_degan(self) -> None:
        code = ("import sys, facekit, facekit.store, facekit.testing, facekit.augment; "
                "assert 'torch' not in sys.modules, 'torch'; assert 'degan' not in sys.modules, 'degan'")
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_degan_config_is_light(self) -> None:
        code = "import sys, degan, degan.config, degan.presets, degan.metrics; assert 'torch' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True)
