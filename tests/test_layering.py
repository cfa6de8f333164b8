"""The package graph points one way, read from the imports themselves (no Prefect needed):

    cli/, deployments/  ->  flows/  ->  tasks/ (Prefect tasks)  ->  cro_awards/ (the pure core)

No package imports one above it; the core never imports Prefect; nothing imports the command line;
an import inside a function (to defer a heavy library, or to let `cli` set Prefect's environment
first) never reaches a project package above the importer's; the core's modules form no cycle.

Inside the core, every module sits in one of its rooms (subpackages), and a room imports only the rooms
before it in `ROOMS` (so the rooms form no cycle either):

    engine <- reading <- method, record <- disclosure <- publication <- report <- run
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

LAYERS = {"cro_awards": 0, "tasks": 1, "flows": 2, "cli": 3, "deployments": 3}
PACKAGES = tuple(LAYERS)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, imported inside a function?, line) for every import of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, inside, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, inside, child.lineno))
                # `from cro_awards.engine import sql` imports the module cro_awards.engine.sql
                found.extend(
                    (f"{child.module}.{alias.name}", inside, child.lineno)
                    for alias in child.names
                    if f"{child.module}.{alias.name}" in MODULES
                )
            visit(child, inside)

    visit(tree, False)
    return found


def _package(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in LAYERS else None


def test_the_packages_are_where_the_layers_say():
    assert {
        "cro_awards.run.pipeline",
        "cro_awards.engine.sql",
        "cro_awards.publication.releases",
        "cro_awards.publication.diff",
        "cro_awards.publication.columns",
        "cro_awards.publication.history",
        "tasks.awards",
        "flows.awards",
        "flows.release",
        "cli.main",
        "deployments.serve",
    } <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    layer = LAYERS[_package(module)]
    for imported, in_function, line in _imports(MODULES[module]):
        package = _package(imported)
        if package is None:
            continue
        where = f"{MODULES[module].relative_to(PROJECT_ROOT)}:{line} imports {imported}"
        assert LAYERS[package] <= layer, f"{where}: a layer above its own"
        assert package != "cli" or _package(module) == "cli", f"{where}: nothing imports the command line"
        assert not (package == "deployments" and _package(module) == "cli"), (
            f"{where}: the command line and the deployments are peers"
        )
        if in_function:
            assert layer == 3 and LAYERS[package] < layer, (
                f"{where} inside a function: only the top layer defers project imports, and only downward"
            )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _package(m) == "cro_awards"))
def test_the_core_runs_without_prefect(module):
    for imported, _, line in _imports(MODULES[module]):
        assert imported.split(".")[0] not in ("prefect", "prefect_dask"), (
            f"{MODULES[module].relative_to(PROJECT_ROOT)}:{line}: the pure core imports {imported}"
        )


def test_prefect_tasks_live_in_tasks_and_flows_in_flows():
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if "@task" in text:
            assert _package(module) in ("tasks", "flows"), f"{module} defines a Prefect task"
        if "@flow" in text:
            assert _package(module) == "flows", f"{module} defines a Prefect flow"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_runtime_module_imports_the_test_data_generator(module):
    """bench/synthetic.py makes test and bench exports; the runtime (cro_awards, cli, flows, tasks,
    deployments) never imports it, nor anything else of bench/ or tests/."""
    for imported, _, line in _imports(MODULES[module]):
        assert imported.split(".")[0] not in ("bench", "tests") and not imported.endswith("synthetic"), (
            f"{MODULES[module].relative_to(PROJECT_ROOT)}:{line} imports {imported}: dev-only code"
        )


def test_the_core_modules_import_each_other_without_a_cycle():
    graph = {
        module: {
            imported
            for imported, in_function, _ in _imports(path)
            if imported in MODULES and imported != module and imported != "cro_awards" and not in_function
        }
        for module, path in MODULES.items()
        if _package(module) == "cro_awards"
    }
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


ROOMS = ("engine", "reading", "method", "record", "disclosure", "publication", "report", "run")
"""The core's subpackages, each importing only those before it: the runner and its infrastructure, exports and
the year's configuration, the method, the run's record, disclosure, publications, the report, the run."""


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "cro_awards" and len(parts) > 1 else None


def test_every_core_module_sits_in_a_room():
    rooms = {_room(module) for module in MODULES} - {None}
    assert rooms == set(ROOMS), f"the core's subpackages are {sorted(rooms)}, ROOMS names {sorted(ROOMS)}"
    flat = sorted(
        module for module in MODULES if _room(module) and module.count(".") == 1 and _room(module) not in ROOMS
    )
    assert not flat, f"modules of cro_awards/ outside its rooms: {flat}"
    assert all((PROJECT_ROOT / "cro_awards" / room / "__init__.py").is_file() for room in ROOMS)


@pytest.mark.parametrize("module", sorted(module for module in MODULES if _room(module)))
def test_a_room_of_the_core_imports_only_the_rooms_before_it(module):
    """Every import counts here, inside a function or under TYPE_CHECKING alike."""
    room = _room(module)
    for imported, _, line in _imports(MODULES[module]):
        other = _room(imported)
        if other is None:
            continue
        assert ROOMS.index(other) <= ROOMS.index(room), (
            f"{MODULES[module].relative_to(PROJECT_ROOT)}:{line} imports {imported}: "
            f"the room {room} imports the later room {other}"
        )


def test_the_rooms_import_each_other_without_a_cycle():
    graph: dict[str, set[str]] = {room: set() for room in ROOMS}
    for module, path in MODULES.items():
        if _room(module):
            graph[_room(module)] |= {_room(i) for i, _, _ in _imports(path) if _room(i) and _room(i) != _room(module)}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_every_package_of_the_runtime_is_packaged():
    """pyproject.toml lists the packages by name (setuptools' `packages`): a room missing there would be
    missing from the wheel. The report's templates are packaged as data beside its code."""
    import tomllib

    setuptools = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {module for module, path in MODULES.items() if path.name == "__init__.py"}
    assert set(setuptools["packages"]) == packages | {"cro_awards.report.templates"}
    assert setuptools["package-data"] == {"cro_awards.report.templates": ["*.j2"]}
    assert list((PROJECT_ROOT / "cro_awards" / "report" / "templates").glob("*.j2"))


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the runtime files (cro_awards, cli, flows, tasks, deployments) importing it,
    for every module outside the standard library and the project."""
    import sys

    ours = {"cro_awards", "cli", "flows", "tasks", "deployments"}
    found: dict[str, set[str]] = {}
    for package in sorted(ours):
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ours:
                        found.setdefault(top, set()).add(str(path.relative_to(PROJECT_ROOT)))
    return found


def test_every_import_of_the_runtime_code_is_a_declared_dependency():
    """A package that arrives only through another's dependencies (scipy through Great Expectations) can
    vanish with that package's next release: each one the runtime imports is named in pyproject.toml."""
    import re
    import tomllib
    from importlib.metadata import packages_distributions

    declared = {
        re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    distributions = packages_distributions()
    undeclared = {
        module: sorted(files)
        for module, files in _third_party_imports().items()
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & declared
    }
    assert not undeclared, f"imported by the runtime but not in pyproject.toml's dependencies: {undeclared}"


SQL_RUNNERS = {
    "cro_awards/engine/graph.py": "the runner and its workspace",
    "cro_awards/engine/sql.py": "runs one file of sql/",
    "cro_awards/disclosure/audit.py": "runs the checks of sql/audit/ on the Arrow tables about to be written, apart",
    "cro_awards/reading/config.py": "cro_keys: DuckDB's lower(identity_key()) of the YAML's spellings, outside any run",
}


def test_no_sql_is_executed_outside_the_runner():
    """Every model runs through the graph (`cro_awards.engine.graph`); a node reads a relation through its Scope.
    Only the modules of `SQL_RUNNERS` talk to DuckDB, each for the reason given."""
    import re

    talks = re.compile(r"\.execute\(|\.sql\(|\bsql\.(rows|arrow|run)\(|duckdb\.connect\(")
    found = {
        str(path.relative_to(PROJECT_ROOT))
        for package in ("cro_awards", "cli", "flows", "tasks", "deployments")
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if talks.search(path.read_text(encoding="utf-8"))
    }
    assert found == set(SQL_RUNNERS)
