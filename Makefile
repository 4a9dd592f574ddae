# Set-up and entry points. Each target installs what it needs by itself.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lit pytest bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) examples/make_models.py
	$(VENV)/bin/lit -sv test
	$(PY) -m pytest -q test/python

bench: $(STAMP)
	$(PY) examples/make_models.py
	$(PY) benchmarks/models.py
