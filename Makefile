# Two commands from nothing: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sumdun-installed
UV := $(VENV)/bin/uv
DEMO_OUT ?= demo_output

.PHONY: demo test setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install_torch.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "sumdun needs Python >= 3.10, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv (from PyPI) installs the same packages as pip, 15x faster (6 s against 93 s here);
	@# pip does it where uv cannot be installed or fails, or with SUMDUN_NO_UV=1 (uv does not
	@# read pip's configuration: a private index set only there needs it)
	test -n "$(SUMDUN_NO_UV)" || $(PY) -m pip install -q uv || true
	$(PY) scripts/install_torch.py
	$(UV) pip install -q --python $(PY) -e ".[all,dev]" || $(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sumdun demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses=4 --dist loadgroup

bench: $(STAMP)
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
