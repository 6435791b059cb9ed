"""The project's shape, checked: no import circle (imports inside functions count too) and no module
longer than MAX_LINES, so a newcomer can read each module and the order of the stages off the imports."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("bfr_core", "app", "bench")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the project's packages."""
    out = {}
    for package in PACKAGES:
        for f in (ROOT / package).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imports_of(name: str, f: Path, known: set[str]) -> set[str]:
    """The project modules that module ``name`` imports, anywhere in its file."""
    package = name if f.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a list of modules, the first repeated last), or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_find_cycle_finds_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_itself_back_through_others():
    mods = modules()
    graph = {}
    for name, f in mods.items():
        # a package's __init__ importing its own submodules (a registry) is a tree, not a circle
        graph[name] = {m for m in imports_of(name, f, set(mods)) if not name or not m.startswith(name + ".")}
    assert find_cycle(graph) is None


def test_no_module_is_longer_than_a_reader_can_hold():
    long = {
        str(f.relative_to(ROOT)): n
        for f in modules().values()
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_bench_script_imports_as_the_readme_runs_it():
    """``python -m bench.<name>`` imports its siblings as ``bench.<sibling>``; a script importing a sibling
    by its bare name (as if bench/ were on sys.path) breaks there."""
    import importlib

    broken = {}
    for name in sorted(m for m in modules() if m.startswith("bench.")):
        try:
            importlib.import_module(name)
        except ImportError as e:
            broken[name] = str(e)
    assert broken == {}
