# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_OFFLINE_MODE := true

.PHONY: run test test-fast lint bench docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml examples/plugins/text_tools/pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	$(PY) -m pip install --quiet --no-deps -e examples/plugins/text_tools
	@touch $(STAMP)

run: $(STAMP)
	@for wf in $(filter-out examples/plugin_config.yaml,$(wildcard examples/*.yaml)); do \
		echo "== $$wf"; \
		$(VENV)/bin/pipeline-ex run "$$wf" --mode mock --plugins examples/plugin_config.yaml --output-dir .outputs || exit $$?; \
	done
	@echo "== examples/dspy/qa_pipeline.yaml (DSPy plugin: compile, then cache hit)"
	@$(VENV)/bin/pipeline-ex dspy cache clear --plugins examples/dspy/plugin_config.yaml
	@TQDM_DISABLE=1 $(PY) examples/dspy/show_runs.py .outputs

test: $(STAMP)
	$(PY) -m pytest -q

# The quick loop while editing: everything but the tests marked slow (fuzzing, installs,
# builds, subprocess sessions); `make test` (and CI) still runs them.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

# The API reference from the docstrings, warnings as errors; open build/site/index.html.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .outputs build dist src/*.egg-info
