# editone: every target runs `setup` first; `setup` is idempotent and fast
# once done. See README.md.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SETUP_STAMP := $(VENV)/.editone-setup
PREFIX ?= /usr/local
CARGO ?= cargo
CARGO_FLAGS := --release --locked
LIB := target/release/libeditone.so
TEST_PREFIX := build/test-prefix
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: all setup build test install demo bench header clean

all: build

# A project-local virtual environment with the pinned torch wheel; libtorch
# is its torch/ folder, linked as .venv/libtorch for build.rs and tch.
setup: $(SETUP_STAMP)

$(SETUP_STAMP): tools/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	ln -sfn "$$($(VENV)/bin/python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))')" $(VENV)/libtorch
	touch $@

build: setup
	$(CARGO) build $(CARGO_FLAGS)

test: setup
	$(CARGO) test $(CARGO_FLAGS)

install: build
	install -d $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/lib/pkgconfig
	install -m 0755 $(LIB) $(PREFIX)/lib/libeditone.so
	install -m 0644 include/editone.h $(PREFIX)/include/editone.h
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|' -e 's|@VERSION@|$(VERSION)|' \
	    tools/editone.pc.in > $(PREFIX)/lib/pkgconfig/editone.pc

bench: setup
	$(CARGO) run $(CARGO_FLAGS) --example bench

clean:
	$(CARGO) clean
	rm -rf build demo
