# parcours: every target creates the virtualenv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo lint test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/parcours demo

# ruff (pyproject.toml [tool.ruff]): pyflakes, import order, line length, private names
lint: $(STAMP)
	$(BIN)/ruff check .

# the browser tests' Chromium and ChromeDriver, from Debian's packages, when this machine can
# install them (root and apt-get); elsewhere those tests skip with a one-line reason.
# SKIP_BROWSER=1 make test does not try.
browser:
	@if [ -n "$(SKIP_BROWSER)" ] || (command -v chromium && command -v chromedriver) >/dev/null; \
	then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver for the browser tests"; \
	  { apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
	    || { apt-get update -q >/dev/null 2>&1 \
	         && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; } \
	  || echo "could not install chromium: the browser tests will skip"; \
	else echo "no chromium here, and no apt-get as root: the browser tests will skip"; fi

test: lint browser
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) out .parcours .pytest_cache .hypothesis
