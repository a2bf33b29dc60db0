"""The listener's insert functions (fills: migration 0035, orders: 0033) insert exactly the columns its
row builders emit: a column added on one side only would be dropped silently by json_populate_recordset."""
from __future__ import annotations

import re
from pathlib import Path

from services.websocket_listener.rows import EVENT_COLUMNS, FILL_COLUMNS, ORDER_COLUMNS

MIGRATIONS = Path(__file__).resolve().parents[3] / "infra" / "postgres" / "migrations"
MIGRATION = MIGRATIONS / "0033_listener_functions.sql"  # ingest_orders
FILLS_MIGRATION = MIGRATIONS / "0035_ingest_receipts.sql"  # ingest_fills, as it stands now


def _lists(table: str) -> tuple[list[str], list[str]]:
    """The INSERT column list and the SELECT list that follows it, for one table."""
    migration = FILLS_MIGRATION if table == "fills" else MIGRATION
    text = migration.read_text()
    m = re.search(rf"INSERT INTO trading\.{table} \((.*?)\)\s*SELECT(.*?)FROM json_populate_recordset", text, re.S)
    assert m, f"no INSERT INTO trading.{table} ... SELECT ... in {migration.name}"
    return ([c.strip() for c in m.group(1).split(",")], [c.strip() for c in m.group(2).split(",")])


def test_fills_function_inserts_every_fill_column() -> None:
    assert _lists("fills") == (list(FILL_COLUMNS), list(FILL_COLUMNS))


def test_orders_function_inserts_every_order_and_event_column() -> None:
    assert _lists("orders") == (list(ORDER_COLUMNS), list(ORDER_COLUMNS))
    assert _lists("order_events") == (list(EVENT_COLUMNS), list(EVENT_COLUMNS))


def test_orders_function_updates_every_column_but_the_keys() -> None:
    text = MIGRATION.read_text()
    updated = re.findall(r"(\w+) = EXCLUDED\.(\w+)", text)
    assert all(a == b for a, b in updated)
    assert [a for a, _ in updated] == [c for c in ORDER_COLUMNS if c not in ("order_id", "bot_id")]
