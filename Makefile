# Two commands do all set-up on a fresh machine (see README.md):
#   make book   install everything into .venv, then build the HTML book: notebooks that changed (or
#               all of them, when src/demos, tests or results changed) run JOBS at a time into the
#               cache, then Jupyter Book renders every page from it (scripts/build_book.py)
#   make test   install everything (Python packages into .venv, Debian's chromium for the browser
#               tests) if not yet there, bring the book up to date (make book), then lint and run
#               the whole test suite on both cores (pytest -n 2); the book tests read that build in _build/
#   make check  the fast lane, for a developer between edits: lint, the setup cells' sync and every
#               test that neither builds the book, executes a notebook, nor drives the browser
#               (pytest -n 2 -m "not book and not notebooks": both cores); no book build first.
#               Its time is in README.md
#   make student  write the student edition into _build/student/: every chapter without its
#               solutions and outputs, and the solutions apart; the Chinese edition's under
#               _build/student/zh/ (scripts/student_edition.py)
#   make book also builds the Chinese edition (中文版) into _build/html/zh/ from locales/ (scripts/build_zh.py);
#   after editing English prose, `.venv/bin/python scripts/i18n.py update` and translate what
#   `scripts/i18n.py check` lists (README)
PYTHON ?= python3
JOBS ?= 2
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book check test student chromium clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# The browser tests drive Debian's chromium (Playwright's own browser download does not work offline);
# fonts-noto-cjk draws the Chinese edition's pages in its screenshots (without it: empty boxes).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@fc-list | grep -qi "noto.*cjk" || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null)

book: $(VENV)/.installed
	$(BIN)/python scripts/build_book.py --jobs $(JOBS)

check: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/sync_setup_cells.py --check
	$(BIN)/python -m pytest -n 2 -m "not book and not notebooks"

test: $(VENV)/.installed chromium book
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/sync_setup_cells.py --check
	$(BIN)/python -m pytest -n 2

student: $(VENV)/.installed
	$(BIN)/python scripts/student_edition.py --out _build/student

clean:
	rm -rf _build
