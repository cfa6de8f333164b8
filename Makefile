# The two commands of the README: `make run` (the awards on the bundled sample) and `make test`.
# Both create .venv from requirements.lock on first use; only Python 3.11, pip and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 4200

.PHONY: run test test-fast lint serve bench calibrate setup browser lock clean

# The bundled sample `make run` scores and releases: the latest survey year with a sample_export. Named, not
# left to `cro-awards run`'s default (the latest YAML), so that `make run` still runs it after
# `cro-awards new-year`, whose year has no sample (tests/test_default_config.py keeps this the latest one).
SAMPLE_CONFIG := surveys/2025.yaml

run: $(STAMP)
	$(BIN)/cro-awards run --config $(SAMPLE_CONFIG) --release

# The linters first (a lint failure fails CI), then every test, on two workers (6 min here instead of 8;
# every wait in the tests has a timeout fit for a busy machine). `make test-fast` is the fast tier.
test: $(STAMP) browser lint
	$(BIN)/python -m pytest -n 2 --dist worksteal

# The fast tier: every test that needs no Prefect (no server, no flow) and repeats nothing a hundred times
# (marker `stress`), on two workers.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not prefect and not stress" -n 2 --dist worksteal

# The linters, configured in pyproject.toml ([tool.ruff]) and .sqlfluff: they report, they never rewrite.
# All three run even when one fails; the target fails if any did.
lint: $(STAMP)
	@status=0; \
	echo "$(BIN)/ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "$(BIN)/ruff format --check ."; $(BIN)/ruff format --check . || status=1; \
	echo "$(BIN)/sqlfluff lint sql/"; $(BIN)/sqlfluff lint sql/ || status=1; \
	exit $$status

# Debian's Chromium, for the report's browser test; where it cannot be installed (not root, no apt),
# that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed; the report's browser test will be skipped"; fi; }

# A local Prefect server and UI on http://127.0.0.1:4200, serving the deployments; Ctrl-C stops all.
serve: $(STAMP)
	exec $(BIN)/python -m deployments.serve --port $(PORT)

# The benchmark: 1x, 10x, 100x and 1000x the sample, pipeline vs baseline vs floor (bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m bench.run --repeat 3 --cold-repeat 5

# Calibration of the uncertainty figures against known truths (11 min on 2 quiet cores, about 20 with other work; writes docs/calibration.md).
calibrate: $(STAMP)
	$(BIN)/python -m bench.calibrate

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3" "setuptools==80.9.0"
	$(BIN)/python -m pip install --quiet --requirement requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $(STAMP)

# Re-pin after changing pyproject.toml's dependencies: resolves them afresh into requirements.lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet ".[test]"
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^cro-awards' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache
