"""Every privilege on the schema `trading`, compared with the catalog: a grant that is not in this
table (or one in it that is missing) fails. Production runs the same bootstrap and migrations with a
non-superuser owner, so these are the production privileges too.

To add a table or function: add its lines to GRANTS below (one line per object and grantee; the
owner trading_user is left out). Functions default to EXECUTE for PUBLIC unless a migration revokes it.
"""
from __future__ import annotations

import psycopg
import pytest

from tests.support.stack import TestStack

pytestmark = pytest.mark.integration

# object (kind name) | grantee | privileges
GRANTS = """
column bots.bot_id                               strategy_user    INSERT
column bots.bot_name                             strategy_user    INSERT,UPDATE
column bots.bot_type                             strategy_user    INSERT,UPDATE
column bots.last_heartbeat                       strategy_user    INSERT,UPDATE
column bots.max_drawdown_pct                     c2_user          UPDATE
column bots.metadata                             strategy_user    INSERT,UPDATE
column bots.redis_db                             strategy_user    INSERT,UPDATE
column bots.status                               c2_user          UPDATE
column bots.strategy_name                        strategy_user    INSERT,UPDATE
column bots.updated_at                           c2_user          UPDATE
column bots.updated_at                           strategy_user    INSERT,UPDATE
function completed_trades_newest(text, integer)  c2_user          EXECUTE
function ingest_batch(uuid, json, json, json)    listener_user    EXECUTE
function ingest_fills(uuid, json)                listener_user    EXECUTE
function ingest_orders(json, json)               listener_user    EXECUTE
function order_status_rank(text)                 PUBLIC           EXECUTE
function order_status_rank(text)                 c2_user          EXECUTE
function order_status_rank(text)                 listener_user    EXECUTE
function order_status_rank(text)                 reconciler_user  EXECUTE
function order_status_rank(text)                 strategy_user    EXECUTE
function outbox_drain(uuid[])                    listener_user    EXECUTE
function pnl_on_fills_delete()                   PUBLIC           EXECUTE
function pnl_on_fills_insert()                   PUBLIC           EXECUTE
function pnl_on_fills_truncate()                 PUBLIC           EXECUTE
function pnl_on_fills_update()                   PUBLIC           EXECUTE
function pnl_refresh()                           c2_user          EXECUTE
function pnl_refresh()                           listener_user    EXECUTE
function pnl_refresh()                           reconciler_user  EXECUTE
schema trading                                   c2_user          USAGE
schema trading                                   listener_user    USAGE
schema trading                                   reconciler_user  USAGE
schema trading                                   strategy_user    USAGE
sequence audit_log_id_seq                        c2_user          USAGE
sequence audit_log_id_seq                        reconciler_user  USAGE
sequence dead_letters_id_seq                     listener_user    USAGE
sequence fills_id_seq                            listener_user    USAGE
sequence order_events_id_seq                     listener_user    USAGE
sequence sync_runs_id_seq                        reconciler_user  USAGE
sequence wallet_snapshots_id_seq                 listener_user    USAGE
table alert_state                                c2_user          INSERT,SELECT,UPDATE
table audit_log                                  c2_user          INSERT,SELECT
table audit_log                                  reconciler_user  INSERT
table backfill_progress                          c2_user          SELECT
table backfill_progress                          reconciler_user  DELETE,INSERT,SELECT,UPDATE
table bots                                       c2_user          SELECT
table bots                                       listener_user    SELECT
table bots                                       reconciler_user  SELECT
table bots                                       strategy_user    SELECT
table dead_letters                               c2_user          SELECT
table dead_letters                               listener_user    INSERT,SELECT,UPDATE
table dead_letters                               reconciler_user  SELECT
table dead_letters                               strategy_user    SELECT
table fills                                      c2_user          SELECT
table fills                                      listener_user    INSERT,SELECT
table fills                                      reconciler_user  SELECT
table fills                                      strategy_user    SELECT
table ingest_receipts                            listener_user    DELETE,INSERT,SELECT
table listener_watermarks                         listener_user    INSERT,SELECT,UPDATE
table order_events                               c2_user          SELECT
table order_events                               listener_user    INSERT,SELECT,UPDATE
table order_events                               reconciler_user  SELECT
table order_events                               strategy_user    SELECT
table orders                                     c2_user          SELECT
table orders                                     listener_user    INSERT,SELECT,UPDATE
table orders                                     reconciler_user  SELECT
table orders                                     strategy_user    SELECT
table pnl_daily                                  c2_user          SELECT
table pnl_daily                                  reconciler_user  SELECT
table pnl_daily                                  strategy_user    SELECT
table pnl_state                                  c2_user          SELECT
table pnl_state                                  reconciler_user  SELECT
table pnl_state                                  strategy_user    SELECT
table round_trips                                c2_user          SELECT
table round_trips                                reconciler_user  SELECT
table round_trips                                strategy_user    SELECT
table strategy_state                             c2_user          SELECT
table strategy_state                             reconciler_user  SELECT
table strategy_state                             strategy_user    DELETE,INSERT,SELECT,UPDATE
table sync_runs                                  c2_user          SELECT
table sync_runs                                  reconciler_user  INSERT,SELECT,UPDATE
table wallet_snapshots                           c2_user          SELECT
table wallet_snapshots                           listener_user    INSERT,SELECT,UPDATE
table wallet_snapshots                           reconciler_user  SELECT
table wallet_snapshots                           strategy_user    SELECT
view completed_trades                            c2_user          SELECT
"""

CATALOG_SQL = """
WITH objs AS (
  SELECT 'schema' AS kind, n.nspname::text AS name, coalesce(n.nspacl, acldefault('n', n.nspowner)) AS acl
    FROM pg_namespace n WHERE n.nspname = 'trading'
  UNION ALL
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END,
         c.relname, coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'trading' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT 'column', c.relname || '.' || a.attname, a.attacl
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'trading' AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
         p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
         coalesce(p.proacl, acldefault('f', p.proowner))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'trading'
)
SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee,
       o.kind, o.name, x.privilege_type
  FROM objs o, aclexplode(o.acl) x
 WHERE x.grantee = 0 OR pg_get_userbyid(x.grantee) <> 'trading_user'
"""

APP_ROLES = ("listener_user", "strategy_user", "reconciler_user", "c2_user")


def expected() -> set[tuple[str, str, str]]:
    out = set()
    for line in GRANTS.strip().splitlines():
        obj_and_grantee, privileges = line.rsplit(None, 1)
        obj, grantee = obj_and_grantee.rsplit(None, 1)
        obj = " ".join(obj.split())
        out |= {(obj, grantee, p) for p in privileges.split(",")}
    return out


def actual(stack: TestStack) -> set[tuple[str, str, str]]:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        rows = conn.execute(CATALOG_SQL).fetchall()
    return {(f"{kind} {name}", grantee, privilege) for grantee, kind, name, privilege in rows}


def test_grants_equal_the_table(stack: TestStack) -> None:
    want, have = expected(), actual(stack)
    unexpected = sorted(have - want)
    missing = sorted(want - have)
    assert not unexpected and not missing, (
        "grants differ from tests/integration/foundation/test_grants.py\n"
        + "".join(f"  unexpected: {o} | {g} | {p}\n" for o, g, p in unexpected)
        + "".join(f"  missing:    {o} | {g} | {p}\n" for o, g, p in missing))


def test_owner_and_roles_have_no_superpowers(stack: TestStack) -> None:
    with psycopg.connect(stack.db.dsn("owner", direct=True)) as conn:
        roles = {r[0]: r[1:] for r in conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles "
            "WHERE rolname = ANY(%s)", (["trading_user", *APP_ROLES],))}
        owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'trading'").fetchone()
    assert owner == ("trading_user",)
    assert roles["trading_user"] == (False, False, False, True)  # creates and administers the app roles
    for role in APP_ROLES:
        assert roles[role] == (False, False, False, False), role


def test_listener_cannot_update_fills(clean_state: TestStack) -> None:
    with psycopg.connect(clean_state.db.dsn("listener"), prepare_threshold=None, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE trading.fills SET close_reason = 'x'")


def test_strategy_cannot_apply_the_pnl_queue(clean_state: TestStack) -> None:
    with psycopg.connect(clean_state.db.dsn("strategy"), prepare_threshold=None, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT trading.pnl_refresh()")
    with psycopg.connect(clean_state.db.dsn("c2"), prepare_threshold=None, autocommit=True) as conn:
        conn.execute("SELECT trading.pnl_refresh()")
