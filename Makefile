# abe's tasks. `make help` lists them.
.DEFAULT_GOAL := help
GO ?= go
BIN := bin/abe
EXAMPLE ?= examples/todo/abe.yaml

.PHONY: help build dev blog sdk test flake lint fuzz clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/abe
	$(GO) build -o $(BIN) ./cmd/abe

dev: build ## build abe and the todo app, serve both on http://127.0.0.1:8090 (local Postgres unless DATABASE_URL is set)
	@test -d examples/todo/web/node_modules || (cd examples/todo/web && npm ci --no-audit --no-fund --loglevel=error)
	cd examples/todo/web && npm run --silent build
	TODO_WEB_DIST=web/dist ./$(BIN) dev --config $(EXAMPLE)

blog: build ## build abe and the blog app, serve both on http://127.0.0.1:8090 (then: node examples/blog/seed.mjs)
	@test -d examples/blog/web/node_modules || (cd examples/blog/web && npm ci --no-audit --no-fund --loglevel=error)
	cd examples/blog/web && npm run --silent build
	cd examples/blog && ../../$(BIN) dev

sdk: ## build the TypeScript SDK and pack it as sdk/js/abe-stack-sdk-<version>.tgz for npm install
	cd sdk/js && npm ci --no-audit --no-fund --loglevel=error && npm pack --silent

test: ## run every test (installs PostgreSQL/Redis with apt when missing, as root)
	./scripts/test

flake: ## hunt flaky tests: go test -race -count=5 beside a busy loop, then the SDK 3 times (PKGS, COUNT, RUN, SDK_RUNS)
	./scripts/flake

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz: ## fuzz the config parser for a minute
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 1m ./schema

clean: ## remove bin/, the examples' local databases and their built apps
	rm -rf bin examples/todo/.abe examples/todo/web/dist examples/blog/.abe examples/blog/web/dist
