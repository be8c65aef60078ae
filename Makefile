# The two entry points of the README: `make up` (a local cluster) and `make test`.
# Both install what is missing first: nats-server from Debian's packages, npm packages with npm ci.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)

.PHONY: up test deps test-deps nats-server iproute2 chromium prometheus bench chaos scale model clean

up: deps
	npm run build
	node dist/bin/dvsd.js up $(ARGS)

test: deps test-deps
	npm test

bench: deps
	npm run bench

deps: nats-server iproute2 node_modules/.installed

nats-server:
	@command -v nats-server >/dev/null || { \
	  echo "installing nats-server (apt-get)"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y nats-server; }

# The tests in real tools: the console in Debian's chromium (driven by playwright-core), the
# metrics scraped by Debian's prometheus. Only `make test` needs them.
test-deps: chromium prometheus

chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (apt-get)"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

prometheus:
	@command -v prometheus >/dev/null || { \
	  echo "installing prometheus (apt-get)"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y prometheus; }

# `ip` for the chaos variant in network namespaces (it skips, saying why, where they cannot be made).
iproute2:
	@command -v ip >/dev/null || { \
	  echo "installing iproute2 (apt-get)"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y iproute2 || \
	  echo "iproute2 could not be installed: the network namespace variant will say it skips"; }

chaos: deps
	npm run chaos -- $(ARGS)

scale: deps
	npm run scale -- $(ARGS)

node_modules/.installed: package.json package-lock.json
	npm ci
	@touch $@

clean:
	rm -rf dist data
