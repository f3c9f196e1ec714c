# The README's two commands: `make demo` and `make test`. Both create .venv and install first.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test lint clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

demo: install
	snakemake --cores $(CORES) --resources gpu=1 --configfile workflow/presets/demo.yaml
	@echo "Report: $(abspath results/synthetic/report/index.html)"

test: install
	pytest -q -ra

lint: install
	snakemake --lint

clean-demo:
	rm -rf results/synthetic
