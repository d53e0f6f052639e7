"""The engine is plain asyncio: no module in it may import Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import generation.engine

ENGINE_DIR = Path(generation.engine.__file__).parent
PLAIN_MODULES = [*sorted(ENGINE_DIR.glob("*.py")), ENGINE_DIR.parent / "providers" / "simulated.py"]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_engine_module_imports_django():
    offenders = {
        path.name: sorted(name for name in imported_modules(path) if name.split(".")[0] == "django")
        for path in PLAIN_MODULES
    }

    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_engine_loads_without_django_in_the_process():
    modules = [f"generation.engine.{p.stem}" for p in ENGINE_DIR.glob("*.py") if p.stem != "__init__"]
    modules.append("generation.providers.simulated")
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ENGINE_DIR.parents[1]
    )

    assert out.stdout.strip() == "[]"
