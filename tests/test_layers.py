"""The package's layers (ARCHITECTURE.md): every import, also one inside a function or under
``TYPE_CHECKING``, runs downwards.

A module's layer is the first entry of :data:`LAYERS` with a pattern matching its dotted name;
it may import modules of its own layer or of a layer below it. Two rules hold inside layers:
sensors and triggers never import operators (the operators build on them), and hooks, which
talk to one service and return plain data, never import lifecycle logic.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "entry points",
        (
            "engagements_*",
            "engagements.cli*",
            "engagements.dagkit",
            "engagements.listeners",
            "engagements.middleware*",
            "engagements.web*",
        ),
    ),
    ("operators", ("engagements.operators*",)),
    ("sensors and triggers", ("engagements.sensors*", "engagements.triggers*")),
    ("task base", ("engagements.tasks*",)),
    ("hooks", ("engagements.hooks*",)),
    (
        "lifecycle logic",
        (
            "engagements.onboarding",
            "engagements.checkin",
            "engagements.costs",
            "engagements.renewal",
            "engagements.decommission*",
            "engagements.deployment",
            "engagements.upkeep*",
            "engagements.milestones",
            "engagements.portfolio",
            "engagements.dossier",
            "engagements.previews",
            "engagements.outbox",
        ),
    ),
    (
        "messages, infrastructure, store",
        ("engagements.messages*", "engagements.infra*", "engagements.store*"),
    ),
    (
        "config and settings",
        (
            "engagements",
            "engagements.config",
            "engagements.settings",
            "engagements.params",
            "engagements.billing",
            "engagements.versions",
            "engagements.xcoms",
        ),
    ),
]
LIFECYCLE = next(i for i, (name, _) in enumerate(LAYERS) if name == "lifecycle logic")


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS`, 0 at the top."""
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise LookupError(f"{module} is in no layer: add it to LAYERS and to ARCHITECTURE.md")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PLUGINS.rglob("*.py")):
        parts = list(path.relative_to(PLUGINS).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[0].startswith("engagement") and not parts[0].endswith(".egg-info"):
            found[".".join(parts)] = path
    return found


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """Every dotted name of the package this module imports, with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "engagements"]


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an imported name belongs to (``a.b.func`` -> ``a.b``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def breaks(module: str, imported: str) -> str | None:
    """Why importing ``imported`` from ``module`` is against the layers, or None."""
    mine, theirs = layer_of(module), layer_of(imported)
    if theirs < mine:
        return f"{LAYERS[mine][0]} may not import {LAYERS[theirs][0]}"
    if module.startswith(("engagements.sensors", "engagements.triggers")) and imported.startswith(
        "engagements.operators"
    ):
        return "sensors and triggers may not import operators"
    if module.startswith("engagements.hooks") and theirs == LIFECYCLE:
        return "hooks may not import lifecycle logic"
    return None


def violations() -> list[str]:
    known = modules()
    found = set()
    for module, path in known.items():
        for line, name in imports(module, path):
            target = resolve(name, known)
            if target is None or target == module:
                continue
            reason = breaks(module, target)
            if reason:
                where = path.relative_to(PLUGINS.parent)
                found.add(f"{where}:{line}: {module} imports {target}: {reason}")
    return sorted(found)


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_import_runs_against_the_layers():
    found = violations()
    assert not found, "imports against the layers (see ARCHITECTURE.md):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "imported", "against"),
    [
        ("engagements.costs", "engagements.hooks.costs", True),
        ("engagements.hooks.costs", "engagements.costs", True),
        ("engagements.hooks.costs", "engagements.billing", False),
        ("engagements.sensors.milestone", "engagements.operators.engagement", True),
        ("engagements.operators.github", "engagements.sensors.github", False),
        ("engagements.config", "engagements.store.base", True),
        ("engagements.web.app", "engagements.hooks.store", False),
    ],
)
def test_the_rules_catch_what_they_are_for(module, imported, against):
    assert (breaks(module, imported) is not None) is against


def test_imports_inside_functions_are_seen(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from engagements.operators.runs import X\n")
    assert imports("engagements.hooks.late", module) == [
        (2, "engagements.operators.runs"),
        (2, "engagements.operators.runs.X"),
    ]
