# The two commands a newcomer needs: `make run` (the platform, locally) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
STACK := $(PY) -m infra.localstack
STACK_ENV := .run/stack.env

.PHONY: venv stack-up stack-down stack-status migrate psql test test-unit run clean-stack

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

test: venv
	$(PY) -m pytest -q -p no:cacheprovider

test-unit: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

clean-stack: stack-down
	rm -rf .run/stack .run/stack.env
