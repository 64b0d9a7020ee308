# Two commands a new user needs (see README): `make demo` and `make test`.
# Both install what is missing first: Debian packages (Icarus Verilog, a C++ toolchain for
# Verilator) and a .venv with the exact pins of requirements.txt.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Debian packages the simulators need: iverilog/vvp for Icarus; g++, make and perl for Verilator's builds.
# g++-aarch64-linux-gnu cross-compiles the CPU fallback's Arm (NEON dot product) path in the tests.
APT_PACKAGES := iverilog g++ make perl g++-aarch64-linux-gnu
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps demo table plan test test-all bench clean help
.DEFAULT_GOAL := help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

install: system-deps $(STAMP)  ## Install Debian packages and the pinned .venv (only what is missing)

system-deps:
	@missing=""; \
	command -v iverilog >/dev/null || missing="$$missing iverilog"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	command -v perl >/dev/null || missing="$$missing perl"; \
	command -v aarch64-linux-gnu-g++ >/dev/null || missing="$$missing g++-aarch64-linux-gnu"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml setup.py $(wildcard cpu/csrc/*)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: install  ## The SIMD int4 multiplier (proof, co-simulation, DSP cost), then the SmolLM2 accuracy table
	$(PY) -m sim.demo
	$(PY) -m golden.table

table: install  ## Only the accuracy table: every quantization baseline side by side on SmolLM2 (~6 min)
	$(PY) -m golden.table

plan: install  ## Re-measure layer sensitivity and write a bit plan to build/plans/plan.json (~3 min)
	$(PY) -m golden.policy

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass.
# One pytest worker per core (pytest-xdist); `make test PYTEST_WORKERS=0` runs in one process, in order.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = -n $(PYTEST_WORKERS)

test: install  ## Unit tests, formal proofs and cocotb co-simulation on Verilator and Icarus, one worker per core
	@$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): failing" >&2; exit 1; fi; exit $$rc

test-all: install  ## Everything, including the slow suites
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "slow or not slow" $(PYTEST_ARGS)

bench: install  ## Benchmarks: simulator speed, TRIP utilisation/cycles, 768×768 co-sim time, TRIP synthesis, CPU kernels, FPGA builds and throughput (the ULX3S build takes ~30 min)
	$(PY) -m benchmarks.sim_speed
	$(PY) -m benchmarks.trip_perf
	$(PY) -m benchmarks.trip_cosim_speed
	$(PY) -m benchmarks.trip_synth
	$(PY) -m benchmarks.cpu_linear
	$(PY) -m benchmarks.fpga_throughput --build --boards icebreaker ulx3s-85f

clean:  ## Remove build products (keeps .venv)
	rm -rf build .pytest_cache
