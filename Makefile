# The README's two commands: `make demo` and `make test`. Both create .venv and install first.
# `make lint` checks the rules and the code style; `make docs` builds the documentation site (docs/, offline, into
# site/); `make rulegraph` redraws docs/rulegraph.svg.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test lint docs rulegraph clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints/ci.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints/ci.txt -e '.[pipeline,slurm,mlflow,dlib,test,docs]'  # every extra; CI's torch
	touch $@

demo: install
	snakemake --cores $(CORES) --resources gpu=1 --configfile workflow/presets/demo.yaml
	@echo "Report: $(abspath results/synthetic/report/index.html)"

test: install
	pytest -q -ra

lint: install
	snakemake --lint
	ruff check .
	ruff format --check .
	snakefmt --check .

# The documentation site from docs/ and mkdocs.yml, built offline; --strict: a broken link, a missing page or a
# docstring that does not render fails (NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2 is not a warning).
docs: install
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet
	@echo "Docs: $(abspath site/index.html)"

# The README's rule graph (config.yaml, the study; every rule feeds the report, drawn without `all`); needs graphviz's `dot` (apt-get install graphviz).
rulegraph: install
	@command -v dot >/dev/null || { echo "make rulegraph: graphviz's dot not found (apt-get install graphviz)" >&2; exit 1; }
	mkdir -p docs
	snakemake --rulegraph --quiet all -- report > docs/rulegraph.dot
	dot -Tsvg docs/rulegraph.dot -o docs/rulegraph.svg
	rm docs/rulegraph.dot

clean-demo:
	rm -rf results/synthetic
