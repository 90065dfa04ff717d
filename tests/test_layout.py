"""The modules of src/losslab import one another one way: no import circle.

The graph is read from the source with ``ast``, so it sees every import, the ones inside
functions included (a circle hidden in a function still means two modules that cannot be
read, tested or moved apart). Imports under ``if TYPE_CHECKING:`` are left out: they are
annotations, never run.

The rule for packages: a node is a module, a package being its ``__init__.py``.

* ``from losslab.x import y`` is an edge to ``losslab.x.y`` where that is a module, and to
  the package ``losslab.x`` otherwise (``y`` is then a name its ``__init__`` re-exports, so
  the importer depends on that ``__init__`` and on all it imports).
* The parent packages that Python runs first (``losslab``, ``losslab.x`` for
  ``losslab.x.y``) are not edges: running a parent is Python's business and says nothing
  of what the importer uses. A package ``__init__`` that re-exports its submodules and a
  submodule that imports a sibling by its own module name is therefore no circle; a
  submodule that imports a name through its own package's ``__init__`` is one.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for every .py file below ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path, package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports, anywhere but TYPE_CHECKING."""
    here = name if package else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return {m for m in found if m in known and m != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules it imports, for the package at ``root``."""
    modules = _modules(root)
    known = set(modules)
    return {name: _imported(name, path, package, known)
            for name, (path, package) in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a circle through an import inside a function is still a circle
        ({"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import f\n",
          "pkg/b.py": "def f():\n    from pkg.a import g\n"}, [["pkg.a", "pkg.b"]]),
        # ... one under TYPE_CHECKING is not
        ({"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import f\n",
          "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from pkg.a import g\n"}, []),
        # relative imports resolve; a package re-exporting a submodule is no circle
        ({"pkg/__init__.py": "from pkg.a import f\n", "pkg/a.py": "from . import b\n",
          "pkg/b.py": "x = 1\n"}, []),
        # importing a name through one's own package's __init__ is one
        ({"pkg/__init__.py": "from pkg.a import f\n", "pkg/a.py": "from pkg import b\n",
          "pkg/b.py": "from pkg import f\n"}, [["pkg", "pkg.a", "pkg.b"]]),
    ],
)
def test_the_checker_finds_circles_and_only_circles(tmp_path, files, expected):
    assert circles(import_graph(_write(tmp_path, files))) == expected


def test_losslab_has_no_import_circle():
    graph = import_graph(SRC / "losslab")
    assert "losslab.study.tuning" in graph["losslab.study.runner"]  # the graph sees functions
    found = circles(graph)
    assert not found, "import circles among src/losslab's modules: " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_the_package_declares_its_annotations():
    # PEP 561: without the py.typed marker in the installed package, type checkers treat
    # losslab as untyped, and setuptools only ships it when package-data names it.
    assert (SRC / "losslab" / "py.typed").is_file()
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["losslab"]
