# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make app    install into .venv and open the app
#   make test   install into .venv (with the test tools) and run the whole test suite
#   make test-slow   the long runs: 1,000 kill -9 trials, 5,000 slow connections
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: app test test-slow bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

app: $(STAMP)
	$(VENV)/bin/fieldkit

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -q

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m slow

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_store.py --sizes 1000
