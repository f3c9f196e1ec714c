"""The package is laid out like the DAG: each rule file has a subpackage of the same name holding the code of
its commands, and no stage's subpackage imports another stage's (shared code lives in top-level modules)."""

from __future__ import annotations

import ast
import graphlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ferflow.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ferflow"
RULE_FILES = sorted(p.stem for p in (ROOT / "workflow" / "rules").glob("*.smk") if not p.stem.endswith("common"))
STAGES = [*RULE_FILES, "predict"]  # predict: the user's command, no rule


def ferflow_imports(path: Path, type_checking: bool = True) -> set[str]:
    """Every ``ferflow.*`` module or name a source file imports (``from ferflow.x import y`` counts as ``ferflow.x.y``,
    ``y`` a module of package ``x`` or a name in module ``x``); ``type_checking=False`` leaves out the imports under
    ``if TYPE_CHECKING:``, which never run."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if not type_checking and isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("ferflow.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ferflow":
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_name(path: Path) -> str:
    """``ferflow.predict.photos`` for ``src/ferflow/predict/photos.py``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("rule_file", RULE_FILES)
def test_each_rule_file_has_the_subpackage_that_runs_its_commands(rule_file: str) -> None:
    text = (ROOT / "workflow" / "rules" / f"{rule_file}.smk").read_text()
    commands = set(re.findall(r"ferflow ([a-z][a-z-]*)", text))
    assert commands, f"{rule_file}.smk calls no ferflow command"
    assert (PACKAGE / rule_file / "__init__.py").is_file()
    for command in commands:
        assert COMMANDS[command][0].startswith(f"ferflow.{rule_file}."), (command, COMMANDS[command][0])


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_imports_another_stages_modules(stage: str) -> None:
    others = [s for s in STAGES if s != stage]
    for path in sorted((PACKAGE / stage).glob("*.py")):
        for module in ferflow_imports(path):
            assert module.split(".")[1] not in others, f"{path.relative_to(ROOT)} imports {module}"


def test_shared_modules_import_no_stage() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in ("cli.py", "__init__.py"):  # the dispatcher names every command module, the package the
            continue  # Python API (`from ferflow import EmotionRecognizer`), both imported lazily
        for module in ferflow_imports(path):
            assert module.split(".")[1] not in STAGES, f"{path.relative_to(ROOT)} imports {module}"


def test_no_module_imports_itself_through_others() -> None:
    """The package's modules import each other in layers, without a circle: every import that runs counts, at the
    top of a file or inside a function (``from ferflow import __version__`` imports the package's ``__init__``)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}

    def module_of(name: str) -> str:  # ``ferflow.x.y`` is module ``ferflow.x`` when ``y`` is a name defined in it
        return name if name in modules else module_of(name.rpartition(".")[0])

    graph = {m: {module_of(i) for i in ferflow_imports(p, type_checking=False)} - {m} for m, p in modules.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail("import circle: " + " -> ".join(exc.args[1]))


def test_the_report_and_its_figures_import_no_torch() -> None:
    """The report's jobs read tables, JSON and histories: they start without loading PyTorch."""
    code = "import sys, ferflow.report.html, ferflow.report.figures; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
