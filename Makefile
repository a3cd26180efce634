# Two commands do all set-up on a fresh machine with only Python:
#   make demo   trains a few seeds, fits every model family, prints the equations
#   make test   unit tests, then the second stage (notebooks, reproduce, Ray)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache

.PHONY: demo test test-unit test-slow install lint docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dynafit demo --out demo_out

test: test-unit test-slow

# two pytest workers, one file each at a time (module fixtures stay in one process):
# much of the unit stage is single-threaded XLA compilation, so 2 cores overlap it
test-unit: $(STAMP)
	$(PY) -m pytest -m "not slow" -q -n 2 --dist loadfile

# each file of the second stage in its own interpreter: Ray clusters, training processes and
# notebook kernels leave no state behind for the next file (a crash names its file)
test-slow: $(STAMP)
	@files=$$($(PY) -m pytest -m slow --collect-only -q 2>/dev/null | grep '::' | cut -d: -f1 | sort -u); \
	if [ -z "$$files" ]; then echo "no slow tests collected"; exit 0; fi; failed=""; \
	for f in $$files; do echo "== slow: $$f"; $(PY) -m pytest -m slow -q $$f || failed="$$failed $$f"; done; \
	if [ -n "$$failed" ]; then echo "second stage FAILED:$$failed"; exit 1; fi; echo "second stage: all passed"

LINT_PATHS := dynafit training tests benchmarks examples docs/_hooks

# all three checks run; the summary line names those that failed
# (type checking: basedpyright in basic mode on dynafit/, [tool.basedpyright] in pyproject.toml;
# errors known when it was introduced are listed in .basedpyright/baseline.json)
lint: $(STAMP)
	@failed=""; \
	echo "== ruff check $(LINT_PATHS)"; \
	$(VENV)/bin/ruff check $(LINT_PATHS) || failed="$$failed ruff-check"; \
	echo "== ruff format --check $(LINT_PATHS)  (fix: ruff format PATHS)"; \
	$(VENV)/bin/ruff format --check $(LINT_PATHS) || failed="$$failed ruff-format"; \
	echo "== basedpyright (basic mode) on dynafit/"; \
	$(VENV)/bin/basedpyright --pythonpath $(PY) || failed="$$failed basedpyright"; \
	if [ -n "$$failed" ]; then echo "make lint FAILED:$$failed"; exit 1; fi; echo "make lint: all passed"

# the documentation site (mkdocs.yml, docs/) into site/; --strict: a broken reference fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) .jax_cache demo_out site
