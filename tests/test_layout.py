"""The harness's shape: imports point down the pipeline (no loop but the plugin registry's), method
building blocks and methods import no stage, the harness names no built-in method, and every module
states its one job and stays short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmark.contract.method import FAMILIES, CodingMethod
from benchmark.contract.registry import available_methods

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "snn", "methods")
# Stages: the harness's subpackages that run, measure or report (the contract is not one).
STAGES = ("benchmark.data", "benchmark.run", "benchmark.metrics", "benchmark.results", "benchmark.render",
          "benchmark.sweeps", "benchmark.audit", "benchmark.cli")
# The registry imports the package `methods` by name (importlib), and `methods` registers through it.
DYNAMIC = {"benchmark.contract.registry": {"methods"}}
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The first-party modules `name` imports anywhere in its code (function bodies included); `from
    package import module` counts as importing that module."""
    found = set(DYNAMIC.get(name, ()))
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                      for alias in node.names}
    return {module for module in found if module in MODULES}


GRAPH = {name: imports(name) for name in MODULES}


def closure(roots: list[str]) -> set[str]:
    """Every first-party module `roots` import, directly or not (`roots` included)."""
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack += GRAPH[name]
    return seen


def cycles() -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in GRAPH[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return components


def test_imports_form_no_loop_but_the_plugin_registrys():
    loops = cycles()
    assert all(component <= {"benchmark.contract.registry", *(m for m in MODULES if m.startswith("methods"))}
               for component in loops), loops
    assert len(loops) <= 1


@pytest.mark.parametrize("package", ["snn", "methods"])
def test_method_building_blocks_and_methods_import_no_stage(package):
    for name in (m for m in MODULES if m == package or m.startswith(f"{package}.")):
        staged = [target for target in GRAPH[name] if target.startswith(STAGES)]
        assert not staged, f"{name} imports the stage module(s) {staged}"


def test_no_harness_module_names_a_built_in_method():
    """A string constant of harness code (docstrings aside) equal to a built-in method's name would
    hard-wire that method; family and hook names that happen to be spelled alike are not method names."""
    names = set(available_methods()) - set(FAMILIES) - set(dir(CodingMethod))
    for name, path in MODULES.items():
        if not name.startswith("benchmark"):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        named = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) and id(node) not in docstrings and node.value in names]
        assert not named, f"{name} names the built-in method(s) {named}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_states_its_job_and_stays_short(name):
    path = MODULES[name]
    text = path.read_text()
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and docstring.split("\n")[0].strip(), f"{path} opens with no docstring stating its job"
    lines = text.count("\n")
    assert lines <= MAX_LINES or "long because" in docstring.lower(), \
        f"{path} has {lines} lines; split it or say at its top why it is one module (\"long because ...\")"
