"""The layout has no import cycles: every module of dynafit imports on its own in a fresh
interpreter, and no module imports inside a function except optional extras."""

from __future__ import annotations

import ast
import concurrent.futures as cf
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import dynafit

ROOT = Path(dynafit.__file__).parent
#: imported inside functions on purpose: Ray (an optional extra) and training/ (a client
#: of dynafit, reached only by the command that runs it)
OPTIONAL = ("ray", "training")


def _modules() -> list[str]:
    names = ["dynafit"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="dynafit."):
        names.append(info.name)
    return sorted(names)


#: run in a fresh interpreter: the third-party packages are imported once, then every
#: dynafit module is imported alone in a forked child that has no dynafit module loaded
_FORKED = """
import os, sys
import diffrax, equinox, jax, matplotlib.figure, numpy, optax, optimistix, pandas
import pysindy, scipy, sklearn, sympy
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException as err:
            print(name, type(err).__name__, err, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
print(",".join(failed))
sys.exit(1 if failed else 0)
"""


def _import_alone(names: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _FORKED, *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_every_module_imports_alone():
    names = _modules()
    assert "dynafit._regression._stlsq" in names and "dynafit.cli._fit" in names
    proc = _import_alone(names)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]


def test_the_check_sees_a_cycle(tmp_path, monkeypatch):
    # two modules that import each other's names at module level fail when imported alone
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import g\ndef f():\n    return 1\n")
    (pkg / "b.py").write_text("from .a import f\ndef g():\n    return 2\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    proc = _import_alone(["cyc.a"])
    assert proc.returncode == 1 and "cyc.a" in proc.stdout


@pytest.mark.slow
def test_every_module_imports_alone_in_its_own_interpreter():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}

    def load(name: str) -> tuple[str, int, str]:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        return name, proc.returncode, proc.stderr[-2000:]

    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        failed = [(n, err) for n, rc, err in pool.map(load, _modules()) if rc != 0]
    assert not failed, failed


def test_no_imports_inside_functions_but_optional_extras():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    mods = [("." * node.level) + (node.module or "")]
                else:
                    continue
                if not all(m.split(".")[0] in OPTIONAL for m in mods):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {mods}")
    assert not found, found


def _module_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported(node: ast.AST, here: list[str]) -> list[str]:
    """The module names an import statement may load (each ``from`` name too: it may be
    a module), resolved against the importer's package ``here``; [] for other nodes."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = here[: len(here) - node.level + 1]
        stem = ".".join([*base, *(node.module or "").split(".")]).strip(".")
    else:
        stem = node.module or ""
    return [stem] + [f"{stem}.{a.name}" for a in node.names]


def _parents(name: str, importer: str) -> list[str]:
    """The packages whose ``__init__`` importing ``name`` runs (not the importer's own)."""
    parts = name.split(".")
    parents = (".".join(parts[:k]) for k in range(2, len(parts)))
    return [p for p in parents if not importer.startswith(p + ".") and importer != p]


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports at load time, outside ``if TYPE_CHECKING``
    (module imports included:
    ``from . import _fit`` is an edge to ``_fit``; importing ``a.b.c`` also runs the
    ``__init__`` of each package on the way that does not already hold the importer)."""
    paths = {_module_of(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for mod, path in paths.items():
        is_pkg = path.name == "__init__.py"
        here = mod.split(".") if is_pkg else mod.split(".")[:-1]
        targets: set[str] = set()
        tree = ast.parse(path.read_text())
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) not in typing_only:
                targets.update(n for n in _imported(node, here) if n in paths)
        targets |= {p for name in targets for p in _parents(name, mod)}
        # the importer's own packages are already initialising: no edge back to them
        graph[mod] = {t for t in targets if t != mod and not mod.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            on.difference_update(comp)
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = _import_graph(ROOT)
    assert "dynafit._fit_family" in graph["dynafit._compare"]
    assert "dynafit._compare" in graph["dynafit._fit"]  # fit(family="auto") above compare
    assert not _cycles(graph), _cycles(graph)


def test_the_graph_sees_a_cycle_through_a_module_import(tmp_path):
    # a -> pkg.b (module import); pkg/__init__ -> pkg.c -> a: a cycle that imports fine
    # in one order, which only the graph sees
    root = tmp_path / "cyc2"
    (root / "pkg").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from .pkg import b\n")
    (root / "pkg" / "__init__.py").write_text("from . import c\n")
    (root / "pkg" / "b.py").write_text("X = 1\n")
    (root / "pkg" / "c.py").write_text("from .. import a\n")
    assert _cycles(_import_graph(root)) == [["cyc2.a", "cyc2.pkg", "cyc2.pkg.c"]]


def test_compare_does_not_import_the_package_face():
    tree = ast.parse((ROOT / "_compare.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name != "dynafit" for a in node.names)
