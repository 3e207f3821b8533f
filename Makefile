# Two commands for a newcomer: `make lab` (set up and open the course) and `make test` (run every test).
# Both create .venv and install the pinned dependencies first; that step is skipped when nothing changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
NOTEBOOKS := $(notdir $(wildcard solutions/*))

.PHONY: setup lab test release clean-state

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(STAMP)
	@echo "Set-up done: $(VENV) holds the pinned course environment."

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Regenerate the student notebooks from the solution notebooks (nbgrader generate_assignment).
release: setup
	cd autograde && for nb in $(NOTEBOOKS); do \
		../$(BIN)/nbgrader generate_assignment "$$nb" --force --log-level=WARN || exit 1; done
