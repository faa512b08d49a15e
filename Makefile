# Two commands from nothing: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sumdun-installed
DEMO_OUT ?= demo_output

.PHONY: demo test setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install_torch.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "sumdun needs Python >= 3.10, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) scripts/install_torch.py
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sumdun demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses=4 --dist loadgroup

bench: $(STAMP)
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
