# soundloc: the commands of the README.
#   make install  creates .venv from the pinned requirements and installs soundloc into it
#   make book     builds the HTML book, executing every chapter on the built-in synthetic world
#   make test     runs the whole test suite (unit tests, the unit tests again on one thread, chapters
#                 under nbval, a -W book build, the built pages in headless Chromium)
# book and test run install first when .venv is missing or older than the requirements; each is
# cheap to run again.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.soundloc-installed
# Chapters read this to run at a smaller (still complete) scale under nbval.
QUICK  ?= 1

.PHONY: install book test unit unit1 notebooks browser clean-book clean help

help:
	@echo "make install - set up: create .venv (pinned requirements) with soundloc and its commands"
	@echo "make book    - build the book (HTML in _build/html)"
	@echo "make test    - run the whole test suite"
	@echo "(then: source .venv/bin/activate, or call .venv/bin/soundloc, .venv/bin/papermill)"

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --path-output . -n -W --keep-going

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q

# the unit tests again with every process on one thread (torch's default is one per core): a test
# that demands bit equality where only the thread count makes it hold fails one of the two runs
unit1: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -p no:cacheprovider

notebooks: $(STAMP)
	SOUNDLOC_QUICK=$(QUICK) $(BIN)/python -m pytest --nbval-lax chapters -q -p no:cacheprovider

# the built book in headless Chromium (skips, saying how to install it, where it is missing)
browser: $(STAMP)
	SOUNDLOC_BROWSER_TEST=1 $(BIN)/python -m pytest tests/test_browser.py -q -p no:cacheprovider

test: unit unit1 notebooks book browser

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV)
