"""One name, one meaning: no two classes in shared/, services/, strategies/ share a name.

Names starting with `_` are exempt: such a class is private to its module (never imported), so its
name cannot be confused across modules (e.g. each CLI's own `_Parser`)."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "strategies")


def _classes() -> dict[str, list[str]]:
    where: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    where[node.name].append(str(path.relative_to(ROOT)))
    return where


def test_the_scan_sees_the_packages() -> None:
    where = _classes()
    assert where["Execution"] == ["shared/bybit/records.py"]
    assert len(where) > 100


def test_no_two_public_classes_share_a_name() -> None:
    shared = {name: paths for name, paths in _classes().items() if len(paths) > 1}
    assert shared == {}
