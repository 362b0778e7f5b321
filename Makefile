# Two commands do all set-up on a fresh machine (see README.md):
#   make book   install everything into .venv, then build the HTML book, executing every notebook
#   make test   install everything into .venv (if not yet), then lint and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book test clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

book: $(VENV)/.installed
	$(BIN)/jupyter-book build . -W --keep-going

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

clean:
	rm -rf _build
