# goship.deploy — see README.md. Every target runs from a fresh checkout; `make setup` first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(PATH)
export GOTOOLCHAIN := local
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: demo setup lab-up lab-down lab-status test test-unit test-go test-integration test-molecule \
        lint sanity build clean

## demo: set up, start the lab, build hello-svc 1.0.0 and 1.214, deploy 1.0.0, roll out 1.214 under load
demo: setup
	bash examples/demo.sh

## setup: create .venv with the pinned toolchain and link this checkout as goship.deploy
setup: $(VENV)/.installed .collections/ansible_collections/goship/deploy

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

.collections/ansible_collections/goship/deploy:
	@mkdir -p $(@D)
	@ln -sfn ../../.. $@

lab-up: setup
	bash lab/up.sh
lab-down:
	bash lab/down.sh
lab-status:
	bash lab/status.sh

## test: everything — unit, Go, the lab (started and stopped here), integration, molecule
test: setup
	bash tests/run.sh

test-unit: setup
	$(PY) -m pytest tests/unit
test-go: setup
	for d in examples/hello-svc examples/quote-api; do (cd $$d && go vet ./... && go test -count=1 ./...) || exit 1; done
test-integration: setup
	$(PY) -m pytest tests/integration
test-molecule: setup
	$(BIN)/molecule test --all
lint: setup
	$(BIN)/ansible-lint

## sanity: ansible-test sanity (validate-modules, pylint, pep8, yamllint, imports, ...)
sanity: setup
	bash tests/sanity/run.sh

build: setup
	$(BIN)/ansible-galaxy collection build --force --output-path build/

clean:
	rm -rf build tests/output .pytest_cache
