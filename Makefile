# wirestate — the two commands a newcomer runs are `make run` and `make test`; both install what
# they need. Everything else is a step they depend on.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN := node_modules/.bin
TSC := $(NODE_BIN)/tsc
MOCHA := $(NODE_BIN)/mocha
PORT ?= 8080

# Debian packages the tests drive for real (interop, browser, model checking, diagrams).
APT_PACKAGES := python3-websockets spin graphviz chromium golang-go
APT_STAMP := node_modules/.apt-$(shell echo $(APT_PACKAGES) | md5sum | cut -c1-8)

.PHONY: help install system-deps generate build check test run clean

help:
	@echo "make run      install, generate, build, start the demo server on 127.0.0.1:$(PORT)"
	@echo "make test     install, build and run the whole test suite"
	@echo "make generate compile spec/ into generated/ and docs/"
	@echo "make check    type-check, regenerate and fail if generated/ or docs/ are stale"

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

# Installs the Debian packages that tests need, once; a missing package is installed, never skipped.
system-deps: $(APT_STAMP)
$(APT_STAMP): | node_modules/.package-lock.json
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

dist/codegen/main.js: $(wildcard codegen/*.ts codegen/**/*.ts) | install
	$(TSC) -p codegen/tsconfig.json

generate: dist/codegen/main.js
	node dist/codegen/main.js

build: install
	$(TSC) -p tsconfig.json

check: install
	$(TSC) -p codegen/tsconfig.json
	node dist/codegen/main.js
	$(TSC) -p tsconfig.json --noEmit
	git diff --exit-code -- generated/ docs/ || { echo "generated/ or docs/ is stale: run 'make generate' and commit the result"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- generated/ docs/); \
	if [ -n "$$untracked" ]; then echo "untracked generated files: $$untracked"; exit 1; fi

test: build system-deps
	$(MOCHA)

# The main job: the demo server on 127.0.0.1:$(PORT), a page at / and a WebSocket endpoint at /ws.
run: generate build
	node dist/runtime/cli/main.js serve --port $(PORT)

clean:
	rm -rf dist
