# The front door. `make e2e` runs every scenario on the default backend (moto);
# `make test` runs the whole test suite (what .ci/run calls).
PYTHON   ?= python3
VENV     ?= .venv
BACKEND  ?= moto
WORKERS  ?= 1
PY       := $(VENV)/bin/python
PYTEST   := $(VENV)/bin/pytest

.PHONY: help venv system-deps setup-localstack e2e test unit services-test e2e-parallel e2e-localstack chaos lint bench sweep clean

help:
	@echo "make e2e                 run every scenario on moto (BACKEND=localstack for LocalStack, WORKERS=N)"
	@echo "make test                unit tests, service tests, scenarios on both backends (CI)"
	@echo "make setup-localstack    install LocalStack into its own Python 3.13 venv"
	@echo "make chaos               random fault plans per flow, 5x the CI budget (CHAOS_SCALE=N)"
	@echo "make lint                ruff + mypy"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

system-deps:
	@scripts/install-system-deps.sh $(if $(filter localstack,$(BACKEND)),--localstack,)

setup-localstack: venv
	@scripts/install-system-deps.sh --localstack
	$(PY) -m harness.cli setup localstack

e2e: venv system-deps $(if $(filter localstack,$(BACKEND)),setup-localstack,)
	$(PYTEST) scenarios --backend $(BACKEND) $(if $(filter-out 1,$(WORKERS)),-n $(WORKERS),)

unit: venv
	$(PYTEST) tests/unit -q

services-test: venv system-deps
	$(PYTEST) tests/services tests/e2e -q

# The chaos tests share the scenario sessions of this run (no Terraform apply of their own).
e2e-parallel: venv system-deps
	$(PYTEST) scenarios tests/chaos --backend moto -n 2

CHAOS_SCALE ?= 5
chaos: venv system-deps $(if $(filter localstack,$(BACKEND)),setup-localstack,)
	HARNESS_CHAOS_SCALE=$(CHAOS_SCALE) $(PYTEST) tests/chaos --backend $(BACKEND) -n 2

e2e-localstack: venv
	$(MAKE) e2e BACKEND=localstack

test: venv system-deps setup-localstack lint
	$(PYTEST) tests -q -n 2 --ignore=tests/chaos
	$(MAKE) e2e-parallel
	$(MAKE) e2e-localstack

lint: venv
	$(VENV)/bin/ruff check harness pipeline tests bench scenarios
	$(VENV)/bin/ruff format --check harness pipeline tests bench scenarios
	$(VENV)/bin/mypy harness pipeline bench
	$(VENV)/bin/mypy --explicit-package-bases scenarios

bench: venv system-deps
	$(PY) -m bench.schedule_bench
	$(PY) -m bench.e2e_bench
	$(PY) -m bench.flows_bench
	$(PY) -m bench.aws_proxy_bench

sweep: venv
	$(PY) -m harness.cli sweep

clean: sweep
	rm -rf .harness
