"""The package's layering, read from the code with ``ast`` (nothing is imported or run).

Layers, bottom to top (docs/design.md)::

    errors, types
    models, text, convert
    model.py, classifier.py, flax.py the bundles (params + config + tokenizer); Flax modules
    explain                          rules, engines, results
    evaluate, corpus, train, index   consumers of explain
    viz                              views of results
    cli                              the top

A module may import from its own layer or below, never above; no private (``_name``) crosses a
package; the packages form no import cycle. The only calls upward are the façades named in
``FACADES``: the bundles' ``explain`` methods reach into ``explain``, and a result's view methods
reach into ``viz`` — each by an import inside that one method, so nothing else can lean on them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxsim"

LAYERS: dict[str, int] = {
    "errors": 0, "types": 0,
    "models": 1, "text": 1, "convert": 1,
    "model": 2, "classifier": 2, "flax": 2,
    "explain": 3,
    "evaluate": 4, "corpus": 4, "train": 4, "index": 4,
    "viz": 5,
    "cli": 6,
}

#: (importing file, enclosing function, imported package): the allowed upward imports.
FACADES = {
    ("model.py", "Model.explain", "explain"),
    ("model.py", "Model.explain_pairs", "explain"),
    ("classifier.py", "Classifier.explain", "explain"),
    ("explain/result.py", "Explanation.show", "viz"),
    ("explain/result.py", "Explanation.to_html", "viz"),
    ("explain/result.py", "Explanation._repr_html_", "viz"),
    ("explain/result.py", "Explanation.save_png", "viz"),
}


def _unit(path: Path) -> str:
    """The layer unit of a file: its top-level package under jaxsim/, or the module name."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


class _Imports(ast.NodeVisitor):
    """Every ``jaxsim`` import of one file: (line, enclosing function, module, names, in TYPE_CHECKING)."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str, str, list[str], bool]] = []
        self.scope: list[str] = []
        self.type_checking = False

    def _scoped(self, node, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        guarded = isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        before, self.type_checking = self.type_checking, self.type_checking or guarded
        for child in node.body:
            self.visit(child)
        self.type_checking = before
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("jaxsim"):
                self.found.append((node.lineno, ".".join(self.scope), alias.name, [], self.type_checking))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.module.startswith("jaxsim") and node.level == 0:
            names = [a.name for a in node.names]
            self.found.append((node.lineno, ".".join(self.scope), node.module, names, self.type_checking))


def _target_units(module: str, names: list[str]) -> list[str]:
    """The layer units an import reaches: ``from jaxsim import explain`` reaches ``explain``."""
    parts = module.split(".")
    if len(parts) >= 2:
        return [parts[1]]
    return [n for n in names if n in LAYERS] or ["__init__"]


def _edges():
    """(file, function, source unit, target unit, line, names, type_checking) per jaxsim import."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py" or path.name == "__main__.py" and _unit(path) == "cli":
            continue  # the package face and `python -m jaxsim.cli` sit above everything
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        for line, function, module, names, guarded in visitor.found:
            for target in _target_units(module, names):
                yield path, function, _unit(path), target, line, module, names, guarded


def test_every_file_of_the_package_has_a_layer():
    units = {_unit(p) for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"}
    assert units <= set(LAYERS), f"files without a layer: {sorted(units - set(LAYERS))}"


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for path, function, source, target, line, module, _, guarded in _edges():
        if target == "__init__" or guarded or LAYERS[target] <= LAYERS[source]:
            continue
        rel = str(path.relative_to(PACKAGE))
        if (rel, function, target) not in FACADES:
            upward.append(f"{rel}:{line} ({function or 'module level'}) imports {module} "
                          f"(layer {target} above {source})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_facades_are_the_only_upward_imports_and_each_still_exists():
    seen = set()
    for path, function, _, target, _, _, _, _ in _edges():
        seen.add((str(path.relative_to(PACKAGE)), function, target))
    missing = FACADES - seen
    assert not missing, f"façades listed but not in the code (remove them from FACADES): {missing}"


def test_no_private_name_crosses_a_package():
    crossing = []
    for path, _, source, target, line, module, names, _ in _edges():
        if target == source:
            continue
        private = [n for n in names if n.startswith("_")] + [
            p for p in module.split(".") if p.startswith("_")]
        if private:
            crossing.append(f"{path.relative_to(PACKAGE)}:{line} takes {private} from {module}")
    assert not crossing, "private names across packages:\n" + "\n".join(crossing)


def test_packages_form_no_import_cycle():
    graph: dict[str, set[str]] = {unit: set() for unit in LAYERS}
    for path, function, source, target, _, _, _, guarded in _edges():
        rel = str(path.relative_to(PACKAGE))
        if target in LAYERS and target != source and not guarded and (rel, function, target) not in FACADES:
            graph[source].add(target)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(unit: str, trail: list[str]) -> bool:
        state[unit] = 1
        for nxt in sorted(graph[unit]):
            if state.get(nxt) == 1:
                cycle.extend(trail + [unit, nxt])
                return True
            if nxt not in state and visit(nxt, trail + [unit]):
                return True
        state[unit] = 2
        return False

    for unit in sorted(graph):
        if unit not in state and visit(unit, []):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("layer", sorted(set(LAYERS.values())))
def test_the_layer_table_names_real_code(layer):
    units = [u for u, lv in LAYERS.items() if lv == layer]
    assert any((PACKAGE / u).is_dir() or (PACKAGE / f"{u}.py").is_file() for u in units), units
