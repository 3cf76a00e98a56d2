# `make demo` and `make test` work on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean graphviz screenshot

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed graphviz
	DAGJAX_COMPILATION_CACHE=1 DAGJAX_HOLD_GC=1 $(PY) examples/multi_output.py
	DAGJAX_COMPILATION_CACHE=1 DAGJAX_HOLD_GC=1 $(PY) examples/tensorboard_imdb_like.py --logdir logs/imdb_like
	DAGJAX_COMPILATION_CACHE=1 $(PY) examples/hyperparameter_search.py

# Graphviz renders plot_model's images; installed where apt-get can (plot_model says what to do otherwise).
graphviz:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; } \
		|| echo "Graphviz not installed: plot_model will write DOT files instead of images."

# TensorBoard's Scalars page for the example's logs, as logs/tensorboard_scalars.png (Debian: apt-get install chromium).
screenshot: $(VENV)/.installed
	DAGJAX_COMPILATION_CACHE=1 DAGJAX_HOLD_GC=1 $(PY) examples/tensorboard_imdb_like.py --logdir logs/imdb_like
	$(VENV)/bin/tensorboard --logdir logs/imdb_like --host 127.0.0.1 --port 6006 --load_fast=false & tb=$$!; \
	for i in $$(seq 60); do $(PY) -c "import sys, urllib.request as u; \
		sys.exit(b'train' not in u.urlopen('http://127.0.0.1:6006/data/runs').read())" 2>/dev/null && break; \
		sleep 1; done; \
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,900 \
		--virtual-time-budget=8000 --screenshot=$(CURDIR)/logs/tensorboard_scalars.png \
		'http://127.0.0.1:6006/#scalars'; status=$$?; kill $$tb; exit $$status

# Two test processes: the suite is compile-bound and one process keeps about 1.2 of 2 cores busy.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2 --dist worksteal

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
