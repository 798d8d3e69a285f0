"""The house rules, checked on the source: imports go one way (no cycles, never up a level, function-level imports
included), no function over 80 lines, and only the CLI prints, handles signals or sets torch threads."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from conftest import ROOT

NAS = ROOT / "nas"
# data flow: space -> layers -> {nn, data} -> train -> {latency, proxies} -> search -> deploy -> cli
LEVELS = {"nas.errors": 0, "nas.bits": 0, "nas.fileio": 0, "nas.lazy": 0, "nas.lru": 0, "nas.paths": 0,
          "nas.deprecation": 0,  # old keyword names, with the release that drops them: imports nothing of nas
          "nas.memory": 0,  # freed memory back to the OS (glibc malloc_trim): imports nothing of nas
          "nas.optuna_compat": 0,  # Optuna's internals, for search and deploy: imports nas.errors only
          "nas.space": 1, "nas.layers": 2, "nas.nn": 3, "nas.data": 3, "nas.train": 4,
          "nas.latency": 5, "nas.proxies": 5, "nas.search": 6, "nas.deploy": 7, "nas.cli": 8}
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(NAS.rglob("*.py")):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


MODULES = _modules()


def _level(module: str) -> int | None:
    """The level of a module: that of the longest LEVELS prefix (``nas`` itself, the lazy facade: none)."""
    best = max((k for k in LEVELS if module == k or module.startswith(k + ".")), key=len, default=None)
    return LEVELS[best] if best else None


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
    return out


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, p in MODULES.items():
        for _, target, names in _imports(p):
            for t in [target] + [f"{target}.{n}" for n in names]:
                if t in MODULES and t != m and not m.startswith(t + ".") and t != "nas":
                    edges[m].add(t)
    return edges


def test_every_module_has_a_level():
    assert [m for m in MODULES if m != "nas" and _level(m) is None] == []


def test_no_module_imports_a_module_above_it():
    upward = [f"{m} (level {_level(m)}) imports {t} (level {_level(t)})"
              for m, ts in _edges().items() for t in ts
              if m != "nas" and _level(t) is not None and _level(t) > _level(m)]
    assert upward == []


def test_no_import_cycles():
    edges = _edges()
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_function_is_longer_than_80_lines():
    long = []
    for p in MODULES.values():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def _calls(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (f"{getattr(f.value, 'id', '?')}.{f.attr}"
                                                         if isinstance(f, ast.Attribute) else "")
            out.append((node.lineno, name))
    return out


def test_only_the_cli_prints_handles_signals_or_sets_torch_threads():
    forbidden = {"print", "signal.signal", "torch.set_num_threads", "sys.exit"}
    found = [f"{p.relative_to(ROOT)}:{line} {name}" for m, p in MODULES.items() if not m.startswith("nas.cli")
             and not m.endswith("__main__") for line, name in _calls(p) if name in forbidden
             and not (m == "nas.latency.importers" and name in ("print", "sys.exit"))]  # a `python -m` tool
    assert found == []


def _cli_flags() -> set[str]:
    """Every option string of every `nas` subcommand."""
    import argparse

    from nas.cli import build_parser

    flags, todo = set(), [build_parser()]
    while todo:
        parser = todo.pop()
        for action in parser._actions:
            flags.update(o for o in action.option_strings if o.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())
    return flags - {"--help"}


def test_library_errors_do_not_name_command_line_flags():
    """Library errors name API arguments (``argument=``); the CLI maps them to its flags. A fix may still
    quote a whole `nas ...` command in backticks (how to measure what is missing)."""
    import re

    flags = _cli_flags()
    flagged = []
    for m, p in MODULES.items():
        if m.startswith("nas.cli") or m == "nas.latency.importers":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "NasError":
                for kw in node.keywords:
                    text = re.sub(r"`[^`]*`", "", ast.unparse(kw.value)) if kw.arg in ("where", "fix") else ""
                    named = sorted(set(re.findall(r"--[a-z][a-z0-9-]*", text)) & flags)
                    if named:
                        flagged.append(f"{p.relative_to(ROOT)}:{node.lineno} {kw.arg} names {', '.join(named)}")
    assert flagged == []


def _nas_imports_of(paths) -> list[tuple[str, int, str, str]]:
    return [(str(p.relative_to(ROOT)), line, module, name) for p in paths for line, module, names in _imports(p)
            if module.startswith("nas") for name in (names or [None])]


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["nas", "experiments", "tests"])
def test_every_import_of_nas_resolves(folder):
    """Function-level imports too: a moved name must not survive in a function nobody ran."""
    paths = sorted((ROOT / folder).rglob("*.py"))
    broken = []
    for where, line, module, name in _nas_imports_of(paths):
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{where}:{line} {module}: {exc}")
            continue
        if name is not None and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                broken.append(f"{where}:{line} {module} has no {name}")
    assert broken == []
