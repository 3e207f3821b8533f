# Two commands for a newcomer: `make lab` (set up and open the course) and `make test` (run every test).
# Both create .venv and install the pinned dependencies first; that step is skipped when nothing changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
NOTEBOOKS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard solutions/*/*.ipynb)))))
# nbgrader runs helper programs (alembic) by name: the venv's bin must come first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

FIRST_NOTEBOOK := $(firstword $(NOTEBOOKS))
LAB := $(BIN)/jupyter lab --LabApp.app_settings_dir=$(CURDIR)/lab/settings

.PHONY: setup lab lab-instructor test browser-test release execute grade-demo bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(STAMP)
	@echo "Set-up done: $(VENV) holds the pinned course environment."

# Student mode: the released notebooks, no nbgrader instructor UI, opens on the first notebook.
lab: setup
	JUPYTER_CONFIG_PATH=$(CURDIR)/lab/student $(LAB) --ServerApp.root_dir=notebooks \
		--LabApp.default_url=/lab/tree/$(FIRST_NOTEBOOK)/$(FIRST_NOTEBOOK).ipynb $(ARGS)

# Instructor mode: the whole repository with nbgrader's create-assignment toolbar and formgrader.
lab-instructor: setup
	cd autograde && ../$(LAB) --ServerApp.root_dir=.. $(ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every notebook opened and run in JupyterLab in headless Chromium (also part of `make test`).
browser-test: setup
	$(BIN)/python -m pytest tests/test_browser.py $(PYTEST_ARGS)

# Re-run the solution notebooks and save their outputs (after editing one): make execute [ARGS=01_fc_local_conv]
execute: setup
	$(BIN)/python -m autograde.execute $(ARGS)

# Regenerate the student notebooks from the solution notebooks (nbgrader generate_assignment).
release: setup
	cd autograde && for nb in $(NOTEBOOKS); do \
		../$(BIN)/nbgrader generate_assignment "$$nb" --force --log-level=WARN || exit 1; done

# The instructor's main job on a demo class (honest and hostile students): results/demo/results/.
grade-demo: setup
	$(BIN)/python -m autograde.demo $(ARGS)

# Speed figures beside their goals (notebooks, grading, references, set-up): results/bench/latest.md.
bench: setup
	$(BIN)/python -m autograde.bench $(ARGS)
