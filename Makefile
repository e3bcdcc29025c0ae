# Verbs for issue-service. Every target that needs Python first builds the virtualenv, so a fresh
# clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DB ?= sqlite:///issues.db
ADDRESS ?= 127.0.0.1:50051
TOKENS ?= server/demo/tokens.json
PROTOS := $(shell find protos -name '*.proto' | sort)
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: venv generate check-generated lint format test test-postgres run migrate seed bench clean buf-lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

generate: $(STAMP)
	rm -rf generated && mkdir -p generated
	$(PY) -m grpc_tools.protoc -I protos \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	  --python_out=generated --grpc_python_out=generated \
	  --mypy_out=generated --mypy_grpc_out=generated $(PROTOS)
	find generated -type d -exec touch {}/__init__.py \;
	rm -f generated/__init__.py

check-generated: generate
	@git diff --exit-code --stat -- generated \
	  && test -z "$$(git status --porcelain -- generated)" \
	  || (echo "generated/ is stale: run 'make generate' and commit" && exit 1)

buf-lint: $(STAMP)
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format -d --exit-code

lint: $(STAMP) buf-lint
	$(VENV)/bin/ruff check server tests
	$(VENV)/bin/ruff format --check server tests
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format server tests
	$(VENV)/bin/ruff check --fix server tests

migrate: $(STAMP)
	DATABASE_URL=$(DB) $(PY) -m server migrate

seed: migrate
	DATABASE_URL=$(DB) $(PY) -m server seed server/demo/demo.json --replace

run: seed
	DATABASE_URL=$(DB) $(PY) -m server serve --address $(ADDRESS) --tokens $(TOKENS)

# The whole suite on SQLite (no server to install). The PostgreSQL leg is `make test-postgres`;
# CI runs both (.ci/run).
test: $(STAMP)
	@echo "== backend: sqlite (embedded) =="
	$(PY) -m pytest
	@echo "== backends run: sqlite. PostgreSQL: run 'make test-postgres' (CI does) =="

# Every database-touching test again on PostgreSQL, in a freshly created database.
test-postgres: $(STAMP)
	@echo "== backend: postgresql ($(PG_ADMIN_URL)) =="
	TEST_PG_ADMIN_URL=$(PG_ADMIN_URL) TEST_BACKEND=postgres $(PY) -m pytest -m db
	@echo "== backends run: postgresql =="

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) issues.db issues.db-wal issues.db-shm
