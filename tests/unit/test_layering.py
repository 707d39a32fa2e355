"""The functional core imports no Faust, no Kafka client and nothing of the shell.

The core (ingest, identity, attribution, moments, preferences, event time, the pipeline and its
state) is plain functions and classes over plain data: `parcours replay` and the worker's agents run
the same code. Every import statement of every core module is read, including the ones inside
functions, so a lazy import cannot slip through either.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import streams

STREAMS = Path(streams.__file__).resolve().parent
CORE = ("ingest", "identity", "attribution", "moments", "preferences", "eventtime",
        "pipeline.py", "state.py", "errors.py",
        # the preference centre's plain parts (its app and state reader are the shell)
        "centre/tokens.py", "centre/choices.py", "centre/texts.py", "centre/page.py",
        "centre/limits.py")
# the Kafka clients and Faust, the shell's packages and ClickHouse's; streams.config reads the
# environment and the Kafka security settings, so the core takes its settings as arguments instead
FORBIDDEN = ("faust", "aiokafka", "confluent_kafka", "kafka", "mode", "clickhouse_connect", "chdb",
             "streams.worker", "streams.kafka", "streams.cli", "streams.embedded",
             "streams.simulate", "streams.config", "sinks")


def imports_of(path: Path, root: Path = STREAMS) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative imports made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            if base == "streams":  # `from streams import worker` names a package
                found += [(node.lineno, f"streams.{alias.name}") for alias in node.names]
    return found


def violations(root: Path = STREAMS) -> list[str]:
    files = []
    for name in CORE:
        target = root / name
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    bad = []
    for path in files:
        for line, module in imports_of(path, root):
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN):
                bad.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return bad


def test_the_core_imports_no_faust_no_kafka_and_no_shell():
    assert violations() == []


def test_importing_the_whole_core_loads_none_of_it():
    """What the modules import in turn counts too: the whole core, imported in a fresh
    interpreter, loads none of the forbidden modules."""
    modules = sorted({"streams." + ".".join(p.relative_to(STREAMS).with_suffix("").parts)
                      for name in CORE
                      for p in ((STREAMS / name).rglob("*.py") if (STREAMS / name).is_dir()
                                else [STREAMS / name])})
    code = ("import importlib, sys\n"
            f"for m in {[m.removesuffix('.__init__') for m in modules]!r}:\n"
            "    importlib.import_module(m)\n"
            f"print([m for m in sys.modules\n"
            f"       if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})])")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, cwd=STREAMS.parent).stdout.strip()
    assert loaded == "[]"


def test_a_planted_import_is_found(tmp_path):
    # A copy of the tree with one shell import planted in a core module, and one lazy import.
    copy = tmp_path / "streams"
    for path in STREAMS.rglob("*.py"):
        target = copy / path.relative_to(STREAMS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    graph = copy / "identity" / "graph.py"
    graph.write_text(graph.read_text() + "\nfrom streams.worker.metrics import HELD\n")
    moments = copy / "moments" / "engine.py"
    moments.write_text(moments.read_text() + "\n\ndef _late():\n    import aiokafka\n")
    stage = copy / "attribution" / "stage.py"
    stage.write_text(stage.read_text() + "\nfrom ..kafka import clients\n")
    found = violations(copy)
    assert [v.split(" imports ")[1] for v in found] == ["streams.worker.metrics", "streams.kafka",
                                                        "aiokafka"]
    assert [v.split(":")[0] for v in found] == ["streams/identity/graph.py",
                                                "streams/attribution/stage.py",
                                                "streams/moments/engine.py"]


def private_imports(root: Path = STREAMS.parent,
                    packages=("streams", "sinks", "schemas", "bench")) -> list[str]:
    """`from a.b import _name` across modules: a private name is its module's own business. Ruff's
    PLC2701 sees only imports from other top-level packages, so this reads every module of ours."""
    bad = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (
                        node.level or (node.module or "").split(".")[0] in packages):
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            bad.append(f"{path.relative_to(root)}:{node.lineno} imports "
                                       f"{alias.name} from {node.module}")
    return bad


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []
