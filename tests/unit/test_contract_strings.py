"""One name, one meaning: every contract string of shared/contracts.py is spelled there and nowhere else.

The patterns come from the contracts module itself, so a new contract is covered as soon as it is added:
a constant is matched whole, a key function by what it returns before its first variable part (called
with a marker; a `*_PREFIX` constant like a function). A string literal, or the literal start of an
f-string, that equals a constant or starts with a function's fixed part is a second definition, and so
is an f-string whose literal start (with a ':') begins a contract. Consumer groups are bare words that are
also role and service names, so for them the check is narrower: no `*_GROUP` / `*_CONSUMER` constant
and no literal in a Redis consumer-group call.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

from shared import contracts

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("shared", "services", "strategies", "infra")
MARK = "\x00"
GROUP_CALLS = {"xgroup_create", "xgroup_destroy", "xgroup_setid", "xgroup_createconsumer", "xgroup_delconsumer",
               "xreadgroup", "xack", "xpending", "xpending_range", "xclaim", "xautoclaim", "xinfo_consumers"}


def _constants() -> dict[str, str]:
    return {n: v for n, v in vars(contracts).items() if n.isupper() and isinstance(v, str)}


def contract_patterns() -> tuple[dict[str, str], dict[str, str]]:
    """(fixed names: value -> contract, prefixes: the fixed part of key functions and `*_PREFIX` -> contract)."""
    fixed = {v: n for n, v in _constants().items() if not n.endswith(("_GROUP", "_CONSUMER", "_PREFIX"))}
    prefixes = {v: n for n, v in _constants().items() if n.endswith("_PREFIX")}
    for name, fn in vars(contracts).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != contracts.__name__:
            continue
        made = fn(*[MARK] * len(inspect.signature(fn).parameters))
        assert isinstance(made, str) and MARK in made, name
        prefixes[made.split(MARK, 1)[0]] = name
    return fixed, prefixes


def group_names() -> set[str]:
    return {v for n, v in _constants().items() if n.endswith(("_GROUP", "_CONSUMER"))}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            out.add(id(body[0].value))
    return out


def violations(path: Path, source: str) -> list[str]:
    fixed, prefixes = contract_patterns()
    groups = group_names()
    tree = ast.parse(source)
    docs = _docstrings(tree)
    in_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []

    def check(text: str, line: int, head_only: bool) -> None:
        if not head_only and text in fixed:
            found.append(f"{path}:{line}: {text!r} is {fixed[text]}")
            return
        for prefix, name in prefixes.items():
            if text.startswith(prefix):
                found.append(f"{path}:{line}: {text!r} spells {name}")
                return
        if head_only and ":" in text:  # f"heartbeat:{service}:{name}" builds what a contract names
            for value, name in [*fixed.items(), *prefixes.items()]:
                if value.startswith(text):
                    found.append(f"{path}:{line}: f-string {text!r}... builds {name}")
                    return

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                check(head.value, node.lineno, head_only=True)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docs and id(node) not in in_fstring:
            check(node.value, node.lineno, head_only=False)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value in groups \
                and any(isinstance(t, ast.Name) and t.id.endswith(("GROUP", "CONSUMER")) for t in node.targets):
            found.append(f"{path}:{node.lineno}: consumer group {node.value.value!r} defined again")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GROUP_CALLS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Constant) and arg.value in groups:
                    found.append(f"{path}:{node.lineno}: consumer group {arg.value!r} spelled in {node.func.attr}")
    return found


def scanned_files() -> list[Path]:
    files = [p for d in SCANNED for p in sorted((ROOT / d).rglob("*.py"))]
    return [p for p in files if not p.relative_to(ROOT).as_posix().startswith("shared/contracts")]


def test_contracts_module_defines_patterns() -> None:
    fixed, prefixes = contract_patterns()
    assert {"fills_channel", "control_channel", "control:flatten_requests", "ingest:executions"} <= set(fixed)
    assert {"fills:", "klines:", "events:", "position:", "market:", "liveness:bot:",
            "ingest:result:", "control:flatten_result:", "heartbeat:"} <= set(prefixes) | set(fixed)
    names = [n for n, v in _constants().items() if not n.endswith(("_GROUP", "_CONSUMER"))]
    assert len(fixed) + len(prefixes) == len(names) + len([p for p in prefixes.values() if p.islower()])


def test_scan_finds_a_second_definition() -> None:
    """The scan itself: the ways a contract used to be spelled outside contracts.py are all caught."""
    src = '''
FILLS = "fills_channel"
def feed(bot_id): return f"fills:{bot_id}"
def beat(svc, n): return f"heartbeat:{svc}:{n}"
PRICE = "market:BTCUSDT:price"
BEATS = "heartbeat:*"
GROUP = "listener"
async def f(r): await r.xreadgroup("telegram_c2", "c2", {})
def harmless(): return ["fills", f"cooldown: {1}", "listener", "trade_sync: interrupted"]
'''
    found = violations(Path("example.py"), src)
    assert len(found) == 8, found


def test_no_contract_string_outside_contracts() -> None:
    found = [v for p in scanned_files() for v in violations(p.relative_to(ROOT), p.read_text())]
    assert found == [], "\n".join(found)
