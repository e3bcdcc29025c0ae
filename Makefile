# Verbs for issue-service. Every target that needs Python first builds the virtualenv, so a fresh
# clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The console script `issue-service` (pyproject [project.scripts]; same entry as `python -m server`).
CLI := $(VENV)/bin/issue-service
STAMP := $(VENV)/.installed
DB ?= sqlite:///issues.db
ADDRESS ?= 127.0.0.1:50051
TOKENS ?= server/demo/tokens.json
PROTOS := $(shell find protos -name '*.proto' | sort)
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: venv generate check-generated lint format test test-postgres run migrate seed bench clean buf-lint \
	bench-quick buf-breaking test-node lint-examples

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

lint: $(STAMP) buf-lint buf-breaking lint-examples
	$(VENV)/bin/ruff check server tests
	$(VENV)/bin/ruff format --check server tests
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format server tests
	$(VENV)/bin/ruff check --fix server tests

migrate: $(STAMP)
	$(CLI) --database-url $(DB) migrate

seed: migrate
	$(CLI) --database-url $(DB) seed server/demo/demo.json --replace

run: seed
	$(CLI) --database-url $(DB) serve --address $(ADDRESS) --tokens $(TOKENS)

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

# Seeds 100k groups, starts `python -m server serve` on SQLite and (when reachable) PostgreSQL,
# loads it from separate client processes; writes BENCHMARKS.md and bench/results.json.
bench: $(STAMP)
	timeout 600 $(PY) -m bench --pg-admin-url $(PG_ADMIN_URL)

# Small data, short runs (< 2 minutes); results in build/bench-quick.json only.
bench-quick: $(STAMP)
	timeout 120 $(PY) -m bench --quick --pg-admin-url $(PG_ADMIN_URL)

# Wire-compatibility of protos/ against the previous commit on main (HEAD~1 of main when on main).
# A clone without main or without a parent commit has nothing to compare against: say so, pass.
MAIN_REF := $(shell for r in main origin/main; do git rev-parse -q --verify $$r >/dev/null && echo $$r && break; done)
BREAKING_AGAINST ?= $(if $(MAIN_REF),$(shell \
  if [ "$$(git rev-parse HEAD)" = "$$(git rev-parse $(MAIN_REF))" ]; then echo '$(MAIN_REF)~1'; \
  else echo '$(MAIN_REF)'; fi))
buf-breaking: $(STAMP)
	@ref='$(BREAKING_AGAINST)'; \
	if [ -z "$$ref" ] || ! git rev-parse -q --verify "$$ref^{commit}" >/dev/null; then \
	  echo "buf-breaking: no earlier commit of main to compare with; skipped"; exit 0; fi; \
	if ! git cat-file -e "$$ref:protos" 2>/dev/null; then \
	  echo "buf-breaking: $$ref has no protos/; nothing to break"; exit 0; fi; \
	echo "buf breaking against $$ref"; \
	$(VENV)/bin/buf breaking --against ".git#ref=$$(git rev-parse $$ref)"

# The Node.js client (clients/node) against a freshly started demo server; skipped without node.
test-node: $(STAMP)
	$(PY) -m pytest tests/e2e/test_node_client.py -v

# examples/client.py type-checks against the generated stubs.
lint-examples: $(STAMP)
	MYPYPATH=generated $(VENV)/bin/mypy --strict examples/client.py

clean:
	rm -rf $(VENV) issues.db issues.db-wal issues.db-shm
