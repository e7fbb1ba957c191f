"""Every package gan_jax imports is declared in pyproject.toml's dependencies (not only there by way of another)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from conftest import REPO


def _imported_top_level_modules() -> set[str]:
    found = set()
    for path in (REPO / "gan_jax").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"gan_jax", "__future__"}


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in project["dependencies"]}


def test_every_imported_package_is_a_declared_dependency():
    """The import scan: each third-party module gan_jax imports (anywhere, deferred imports too) belongs to a
    distribution named in [project].dependencies (tensorflow through tensorflow-cpu, its CPU build)."""
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {}
    for module in sorted(_imported_top_level_modules()):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if module == "tensorflow":
            names.add("tensorflow-cpu")
        if not names & declared:
            undeclared[module] = sorted(names)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_scan_sees_deferred_imports_and_can_fail():
    modules = _imported_top_level_modules()
    assert {"jax", "flax", "optax", "PIL", "absl", "scipy", "tensorflow_datasets"} <= modules  # PIL/absl: deferred
    assert "os" not in modules and "gan_jax" not in modules
    assert "not-a-package" not in _declared() and "pillow" in _declared()
