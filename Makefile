# citeqa: two commands set up a fresh clone. `make run` serves; `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

CHROMIUM := /usr/bin/chromium
WRK := /usr/bin/wrk
PODMAN := /usr/bin/podman
DEBOOTSTRAP := /usr/sbin/debootstrap
APT := $$(test "$$(id -u)" = 0 || echo sudo) apt-get

.PHONY: run test test-docker lint docs index serve eval bench screenshots clean FORCE

# The folders install as the one package `citeqa` (pyproject.toml maps citeqa.index to index/, ...).
# A strict editable install links each file, so IDEs and type checkers see a plain package; a file added
# or removed needs a reinstall, which the list of package files below triggers.
EDITABLE := --config-settings editable_mode=strict
PACKAGE_DIRS := index answer service eval bench cluster

$(VENV)/.package-files: FORCE
	@mkdir -p $(VENV)
	@find $(PACKAGE_DIRS) -type f -not -path '*/__pycache__/*' -not -path 'bench/results/*' | sort > $@.new
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@

$(BIN)/citeqa: pyproject.toml $(VENV)/.package-files
	$(PYTHON) -m venv $(VENV)
	@# CPU torch first and pinned: an unpinned torch would pull gigabytes of CUDA wheels.
	$(PIP) torch==2.13.0
	$(PIP) -e . $(EDITABLE)
	@touch $@

$(VENV)/.test-deps: $(BIN)/citeqa
	$(PIP) -e '.[test]' $(EDITABLE)
	@touch $@

index: $(BIN)/citeqa
	$(BIN)/citeqa index build --docs seeds --data var

# The first start builds the index from seeds/ (about 10 s; /readyz says 503 until then).
run: $(BIN)/citeqa
	$(BIN)/citeqa serve --host 127.0.0.1 --port 8000 --data var --seed seeds

$(VENV)/.eval-deps: $(BIN)/citeqa
	$(PIP) -e '.[eval]' $(EDITABLE)
	@touch $@

# The evaluation on every set of eval/sets/ (news, HTML docs, Markdown docs), with both baselines; fails
# when a figure misses its floor in the set's thresholds.toml or falls behind LangChain's default.
eval: $(VENV)/.eval-deps
	$(BIN)/citeqa eval --all --out var/eval --check

# The browser tests drive Debian's Chromium (Playwright cannot download a browser here).
$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests (apt-get)..."
	$(APT) update -qq
	DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium >/dev/null

# What test-docker builds the image with: no Docker engine runs here, podman builds without one.
$(PODMAN) $(DEBOOTSTRAP):
	$(APT) update -qq
	DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq podman debootstrap >/dev/null

# The load generator of `citeqa bench`.
$(WRK):
	$(APT) update -qq
	DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq wrk >/dev/null

# Style, and the direction of dependencies: index <- answer <- {service, eval, bench} (pyproject.toml).
lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint $(CHROMIUM) $(WRK)
	$(BIN)/pytest -m "not docker" --durations=15

# Pages of docs/ generated from the code: the settings reference.
docs: $(BIN)/citeqa
	$(BIN)/python -m citeqa.service.config > docs/settings.md

# Builds the container image with podman and starts the service from it (about 10 minutes).
test-docker: $(VENV)/.test-deps $(PODMAN) $(DEBOOTSTRAP)
	$(BIN)/pytest -m docker -s tests/docker

# Every benchmark on this machine (about 5 minutes): bench/results/full.json and docs/benchmarks.md.
bench: $(VENV)/.eval-deps $(WRK)
	$(BIN)/citeqa bench

# Retake the chat page's screenshots shown in the README.
screenshots: $(VENV)/.test-deps $(CHROMIUM)
	$(BIN)/pytest -q tests/service/test_page.py --screenshots docs -k "streams_in or phone or pdf_citation"

clean:
	rm -rf var .pytest_cache .ruff_cache
