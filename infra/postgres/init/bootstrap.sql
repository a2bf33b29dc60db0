-- The cluster-level set-up, run once by the superuser on a fresh cluster: in production by the
-- postgres image (infra/postgres/init/10-bootstrap.sh), locally and in tests by infra/localstack.py.
-- The schema owner `trading_user` is NOT a superuser, so production privileges equal the tested ones.
-- Passwords come from the environment (psql \getenv), never from a command line.
\set ON_ERROR_STOP on
\getenv owner_password TRADING_OWNER_PASSWORD
\getenv pgbouncer_auth_password PGBOUNCER_AUTH_PASSWORD

CREATE ROLE trading_user LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD :'owner_password';
CREATE DATABASE trading_db OWNER trading_user;
REVOKE ALL ON DATABASE trading_db FROM PUBLIC;

-- The application roles are created by the owner, so it administers them (sets their logins in
-- `python -m shared.db.migrate`; PostgreSQL 16 requires the creator's ADMIN option for that).
SET ROLE trading_user;
CREATE ROLE listener_user NOLOGIN;
CREATE ROLE strategy_user NOLOGIN;
CREATE ROLE reconciler_user NOLOGIN;
CREATE ROLE c2_user NOLOGIN;
RESET ROLE;
GRANT CONNECT ON DATABASE trading_db TO trading_user, listener_user, strategy_user, reconciler_user, c2_user;

-- PgBouncer looks passwords up through this role and one function (production: auth_query), so its
-- container holds one password of its own instead of every role's.
CREATE ROLE pgbouncer_auth LOGIN PASSWORD :'pgbouncer_auth_password';
GRANT CONNECT ON DATABASE trading_db TO pgbouncer_auth;
\connect trading_db
CREATE SCHEMA pgbouncer;
REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;
GRANT USAGE ON SCHEMA pgbouncer TO pgbouncer_auth;
CREATE FUNCTION pgbouncer.get_auth(p_usename text) RETURNS TABLE (usename name, passwd text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT usename, passwd FROM pg_catalog.pg_shadow
    WHERE usename = p_usename AND NOT usesuper AND usename <> 'pgbouncer_auth'
$$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer_auth;
