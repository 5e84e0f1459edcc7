# The front door. `make e2e` runs every scenario on the default backend (moto);
# `make test` runs the whole test suite (what .ci/run calls).
PYTHON   ?= python3
VENV     ?= .venv
BACKEND  ?= moto
WORKERS  ?= 1
PY       := $(VENV)/bin/python
PYTEST   := $(VENV)/bin/pytest

.PHONY: help venv system-deps setup-localstack package deploy checkov e2e test unit services-test e2e-parallel e2e-localstack chaos lint bench sweep clean

help:
	@echo "make e2e                 run every scenario on moto (BACKEND=localstack for LocalStack, WORKERS=N)"
	@echo "make test                unit tests, service tests, scenarios on both backends (CI)"
	@echo "make setup-localstack    install LocalStack into its own Python 3.13 venv"
	@echo "make chaos               random fault plans per flow, 5x the CI budget (CHAOS_SCALE=N)"
	@echo "make lint                ruff + mypy + terraform fmt"
	@echo "make package             build the Lambda zips and the EC2 worker bundle (build/)"
	@echo "make deploy              deploy terraform/stack to the AWS account of your credentials"
	@echo "make checkov             checkov over terraform/ (installed into .harness/tools/checkov)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

system-deps:
	@scripts/install-system-deps.sh $(if $(filter localstack,$(BACKEND)),--localstack,)

# The artifacts terraform/stack uploads (reproducible; rebuilt only when an input changed).
package: venv
	$(PY) scripts/build_packages.py

# To a real account: repositories, then images, then the rest (see README "Deploy to AWS").
deploy: venv
	PYTHON=$(PY) scripts/deploy.sh

CHECKOV := .harness/tools/checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .harness/tools/checkov
	.harness/tools/checkov/bin/pip install -q checkov==3.3.30

checkov: $(CHECKOV)
	$(CHECKOV) -d terraform --framework terraform --quiet --compact

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

test: venv system-deps setup-localstack lint package $(CHECKOV)
	$(PYTEST) tests -q -n 2 --ignore=tests/chaos
	$(MAKE) e2e-parallel
	$(MAKE) e2e-localstack

lint: venv
	$(VENV)/bin/ruff check harness pipeline tests bench scenarios scripts
	$(VENV)/bin/ruff format --check harness pipeline tests bench scenarios scripts
	$(VENV)/bin/mypy harness pipeline bench
	$(VENV)/bin/mypy --explicit-package-bases scenarios
	TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive terraform tests/e2e/pitfalls_stack bench/schedule_stack

bench: venv system-deps
	$(PY) -m bench.schedule_bench
	$(PY) -m bench.e2e_bench
	$(PY) -m bench.flows_bench
	$(PY) -m bench.aws_proxy_bench

sweep: venv
	$(PY) -m harness.cli sweep

clean: sweep
	rm -rf .harness build
