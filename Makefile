# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make app    install into .venv and open the app
#   make test   install into .venv (with the test tools) and run the whole test suite
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: app test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

app: $(STAMP)
	$(VENV)/bin/fieldkit

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_store.py --quick
