# The two entry points of the README: `make up` (a local cluster) and `make test`.
# Both install what is missing first: nats-server from Debian's packages, npm packages with npm ci.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)

.PHONY: up test deps nats-server bench model clean

up: deps
	npm run build
	node dist/bin/dvsd.js up $(ARGS)

test: deps
	npm test

bench: deps
	npm run bench

deps: nats-server node_modules/.installed

nats-server:
	@command -v nats-server >/dev/null || { \
	  echo "installing nats-server (apt-get)"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y nats-server; }

node_modules/.installed: package.json package-lock.json
	npm ci
	@touch $@

clean:
	rm -rf dist data
