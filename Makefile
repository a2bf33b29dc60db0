# The two commands a newcomer needs: `make run` (the platform, locally) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
STACK := $(PY) -m infra.localstack
STACK_ENV := .run/stack.env

.PHONY: venv stack-up stack-down stack-status migrate psql test test-unit run clean-stack \
	backfill sync sync-status cli backup restore

venv: .venv/.installed
.venv/.installed: pyproject.toml
	bash infra/bootstrap.sh
	@touch $@

stack-up: venv
	$(STACK) up

stack-down: venv
	$(STACK) down

stack-status: venv
	$(STACK) status

migrate: stack-up
	source $(STACK_ENV) && $(PY) -m shared.db.migrate

psql: stack-up
	source $(STACK_ENV) && PGPASSWORD="$$POSTGRES_PASSWORD" psql -h 127.0.0.1 -p "$$PGBOUNCER_PORT" -U trading_user trading_db

run: venv
	$(PY) -m infra.run_local

# Operators' commands against the platform of `make run`, as in production (infra/opctl.py loads the
# local stack's settings and keys): make backfill MONTHS=3 [BOT=lxalgo_001] [SYMBOL=BTCUSDT]
OPCTL := $(PY) -m infra.opctl
backfill: venv
	@$(OPCTL) backfill --months "$(MONTHS)" --bot "$(BOT)" --symbol "$(SYMBOL)"

sync: venv
	@$(OPCTL) sync --hours "$(HOURS)" --bot "$(BOT)" --symbol "$(SYMBOL)"

sync-status: venv
	@$(OPCTL) sync-status

cli: venv
	@$(OPCTL) cli $(CMD)

# Three workers (pytest-xdist), a file each at a time, each with its own private stack: most tests wait on
# real servers (the long ones on real minutes), so three share two cores well. Files are handed out longest
# first, each to a worker with nothing left to start (tests/support/file_scheduling.py).
test: venv
	$(PY) -m pytest -q -p no:cacheprovider -n 3 --dist loadfile

test-unit: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

# Backups of the local stack (the production container `postgres_backup` runs the same code daily).
BACKUP_DIR := .run/backups
backup: venv
	@source $(STACK_ENV) && $(PY) -m infra.backup --dir "$(BACKUP_DIR)" once

# Replaces the schema `trading` with the dump's, in one transaction: stop `make run` first.
restore: venv
	@source $(STACK_ENV) && $(PY) -m infra.backup restore "$(FILE)"

clean-stack: stack-down
	rm -rf .run/stack .run/stack.env
