# Guardrail: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds live outside the checkout so they survive clean clones (CI reuses them).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/guardrail-target
VENV := $(CURDIR)/.venv
PYTHON ?= python3
REQUIREMENTS := tests/emulator/requirements.txt
# cargo-lambda (from the venv) for the end-to-end test.
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help venv test demo lint build check-policy clean-venv

help:
	@echo "make demo          build, start a local AWS emulator, replay events/ through the functions"
	@echo "make test          fmt, clippy, and every test (unit, emulator, end-to-end)"
	@echo "make check-policy  validate infra/policy.toml (or POLICY=path)"

$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

venv: $(VENV)/.installed

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: venv lint
	cargo test --workspace --locked

build:
	cargo build --workspace --locked

demo: venv build
	$(CARGO_TARGET_DIR)/debug/guardrail demo

check-policy: build
	$(CARGO_TARGET_DIR)/debug/guardrail check-policy $(or $(POLICY),infra/policy.toml)

clean-venv:
	rm -rf $(VENV)
