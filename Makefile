PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data/corpus ../shared/data/routerbench_subset.parquet
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test scale-test bench train eval lint soak constraints screenshots vendor-ui

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmrank serve --host 127.0.0.1 --port 8080

test: $(STAMP)
	$(BIN)/pytest -q

# Two replicas behind nginx sharing one Redis (needs redis-server and nginx: apt-get install redis-server nginx-light).
scale-test: $(STAMP)
	$(BIN)/pytest -q -s -m scale tests/scale

BENCH_STAMP := .venv-bench/.installed
LITELLM_PROXY := 'litellm[proxy]==1.103.0'

# LiteLLM's own proxy, for comparison only: in its own venv so its extra dependencies stay out of the gateway's.
$(BENCH_STAMP): bench/constraints.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -c bench/constraints.txt $(LITELLM_PROXY)
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	@command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "bench needs nginx: apt-get install nginx-light"; exit 1; }
	$(BIN)/python -m bench.router_scoring
	$(BIN)/python -m bench.gateway_overhead
	$(BIN)/python -m bench.upstream_call
	$(BIN)/python -m bench.gateway_share
	$(BIN)/python -m bench.decisions_log
	$(BIN)/python -m bench.scale_out
	$(BIN)/python -m bench.targets

train: $(STAMP)
	$(BIN)/llmrank train --data $(DATA) --out router_model/checkpoints/default

eval: $(STAMP)
	$(BIN)/llmrank eval --data $(DATA) --json docs/results/eval.json --plot docs/results/pareto.png

# The dashboard's views as its browser test sees them, into the folder the README shows.
screenshots: $(STAMP)
	LLMRANK_UI_SCREENSHOTS=docs/ui $(BIN)/pytest -q tests/gateway/test_dashboard_browser.py -k shows_each

# uPlot, the dashboard's charts, from the npm registry (npm pack checks the registry's integrity hash).
UPLOT_VERSION := 1.6.32
vendor-ui:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent uplot@$(UPLOT_VERSION) && tar xzf uplot-$(UPLOT_VERSION).tgz && \
		cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE package/package.json \
		$(CURDIR)/gateway/static/vendor/uplot/ && rm -rf $$tmp

soak: $(STAMP)
	$(BIN)/python -m tests.soak --duration 600 --clients 50

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway router_model bench tests

PIN_VENV := .venv-pin
NEW_PIN_VENV := rm -rf $(PIN_VENV) && $(PYTHON) -m venv $(PIN_VENV) && $(PIN_VENV)/bin/pip install --quiet --upgrade pip

# After a change to pyproject.toml: every package resolved afresh in a throw-away venv and pinned to what it got
# (pip freeze, without this project; torch keeps its own line). Review the diff, then make install test bench.
constraints:
	$(NEW_PIN_VENV)
	$(PIN_VENV)/bin/pip install --quiet 'torch==2.13.0' -e '.[dev]'
	{ sed '/^# Regenerate/q' constraints.txt; $(PIN_VENV)/bin/pip freeze --exclude-editable | grep -v '^torch=='; } \
		> constraints.txt.new && mv constraints.txt.new constraints.txt
	$(NEW_PIN_VENV)
	$(PIN_VENV)/bin/pip install --quiet $(LITELLM_PROXY)
	{ sed '/^[^#]/Q' bench/constraints.txt; $(PIN_VENV)/bin/pip freeze; } \
		> bench/constraints.txt.new && mv bench/constraints.txt.new bench/constraints.txt
	rm -rf $(PIN_VENV)
