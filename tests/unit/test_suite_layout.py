"""The suite's own house rule: factories and helpers live in tests/support/; a test module never
imports another test module or a conftest (pytest gives fixtures; everything else is support)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add("." * node.level + (node.module or ""))
    return found


def test_only_support_is_imported_from_the_tests_package() -> None:
    offending = {
        f"{path.relative_to(TESTS.parent)}: {module}"
        for path in TESTS.rglob("*.py")
        for module in imported_modules(path)
        if module.startswith(".")
        or (module.split(".")[0] == "tests" and module != "tests.support" and not module.startswith("tests.support."))
    }
    assert offending == set(), "import these from tests/support instead"


def test_the_rule_sees_what_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text("from tests.integration.conftest import running\nimport tests.unit.test_engine\n"
                      "from . import helpers\nfrom tests.support.auth import OP\n")
    assert imported_modules(sample) == {"tests.integration.conftest", "tests.unit.test_engine", ".",
                                        "tests.support.auth"}
