"""The package's import graph: no cycles, and the core never reaches the consumers.

The graph is read from the source with ``ast`` (nothing is imported), counting imports inside
functions too, since a function-level import is still a dependency. Imports under
``if TYPE_CHECKING:`` are for type checkers only and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "rnnscope"

# the numpy hub: data model, gate layouts, reference cells, statistics, errors, text helpers
CORE = {
    "rnnscope._model",
    "rnnscope._layouts",
    "rnnscope._cells",
    "rnnscope._stats",
    "rnnscope._errors",
    "rnnscope._format",
    "rnnscope._activations",
}
# what sits on top: figures, the HTML report, the command line, the training monitors
CONSUMERS = ("rnnscope.plot", "rnnscope._report", "rnnscope._cli", "rnnscope._monitor")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _lazy_targets(init: Path) -> list[str]:
    """Modules that ``rnnscope.__getattr__`` imports: the values of ``_LAZY`` and the
    names in ``_SUBPACKAGES``."""
    found: list[str] = []
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id in ("_LAZY", "_SUBPACKAGES"):
                value = ast.literal_eval(node.value)
                names = value.values() if isinstance(value, dict) else value
                found += [f"{PACKAGE}.{n.lstrip('.')}" for n in names]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # `from pkg import sub` imports the submodule; `from mod import f` the module
                targets = [
                    f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin
                    for a in node.names
                ]
            if name == PACKAGE:  # the package's lazy names are imports on first use
                targets += _lazy_targets(path)
            for t in targets:
                while t and t not in modules and t.startswith(PACKAGE + "."):
                    t = t.rsplit(".", 1)[0]  # `import rnnscope.plot._rnn.x` names a module
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_graph_reader_sees_known_edges():
    graph = _graph()
    assert "rnnscope._errors" in graph["rnnscope"]  # a relative `from ._errors import ...`
    assert {"rnnscope._report", "rnnscope.plot"} <= graph["rnnscope"]  # lazy, on first use
    assert CORE <= set(graph), sorted(CORE - set(graph))
    assert any(m.startswith("rnnscope.plot") for m in graph)
    # function-level imports count: the CLI imports the report inside a function
    assert any(t.startswith("rnnscope._report") for t in _reach(graph, "rnnscope._cli"))


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


@pytest.mark.parametrize("core", sorted(CORE))
def test_the_core_never_reaches_plot_report_cli_or_monitor(core):
    graph = _graph()
    bad = sorted(m for m in _reach(graph, core) if m.startswith(CONSUMERS))
    assert not bad, f"{core} reaches {bad}"


@pytest.mark.parametrize("core", sorted(CORE))
def test_the_core_imports_numpy_and_the_standard_library_only(core):
    path = _modules()[core]
    allowed = {"numpy", "__future__"}
    outside = set()
    for node in _imports(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        if isinstance(node, ast.ImportFrom) and node.level:
            continue
        for n in names:
            top = (n or "").split(".")[0]
            if top not in allowed and top not in _stdlib():
                outside.add(top)
    assert not outside, f"{core} imports {sorted(outside)}"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names)
