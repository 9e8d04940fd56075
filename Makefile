# tickpath: two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench soak install sim clean native sanitize fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

# The native core (C++, pybind11) is built by the package's build (setup.py) at install time; this
# rebuilds it in place when a source changed since (an editable install does not rebuild by itself).
NATIVE_SRC := $(wildcard src/tickpath/native/*.hpp src/tickpath/venues/binance/native/*.[ch]pp src/tickpath/ingest/native/*.[ch]pp) setup.py
NATIVE_SO := src/tickpath/venues/binance/.core-built
$(NATIVE_SO): $(STAMP) $(NATIVE_SRC)
	$(BIN)/python setup.py -q build_ext --inplace
	touch $@

native: $(NATIVE_SO)

demo: $(STAMP)
	$(BIN)/tickpath demo

test: $(STAMP) $(NATIVE_SO)
	./scripts/install-system-deps.sh
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz
	$(BIN)/mypy
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -p no:cacheprovider

# Without the integration tests (real nats-server, moto, terraform, processes of tickpath): sockets
# and the simulator stay, on virtual time (tests/virtual_time.py); two workers (pytest-xdist).
# Bytecode is cached even where the environment sets PYTHONDONTWRITEBYTECODE: without it every worker
# compiles and assertion-rewrites every module again (measured: collection 8.4 -> 4.8 CPU-s per worker).
UNIT_WORKERS ?= 2
unit: $(STAMP) $(NATIVE_SO)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -p no:cacheprovider -m "not integration" -n $(UNIT_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) $(NATIVE_SO)
	./scripts/install-system-deps.sh
	$(BIN)/python -m bench

# Long runs, minutes each, not in `make test` or `make bench`: every bench/soak_*.py (combined
# exchange faults for 10 min at 20k msgs/s; node loss and kill -9). SOAK_SECONDS=N shortens each.
# Figures in bench/soak-last-run.json; docs/reliability.md keeps the current table.
soak: $(STAMP) $(NATIVE_SO)
	$(BIN)/python -m bench.soak

# The native core under AddressSanitizer + UBSan (also part of `make test`).
sanitize: $(NATIVE_SO)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/native/test_sanitizers.py

# Coverage-guided fuzzing (atheris) of every decoder and loader, FUZZ_SECONDS each; not in `make test`.
# Inputs that crash land in fuzz/crashes/ (turn each into a regression test); the corpus grows in
# .fuzz-corpus/ (the checked-in seeds are fuzz/corpus/).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frames capture config nats ingest_native
fuzz: $(NATIVE_SO)
	mkdir -p fuzz/crashes
	set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p .fuzz-corpus/$$t; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  $(BIN)/python -m fuzz.run $$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=10 \
	    -artifact_prefix=fuzz/crashes/$$t- .fuzz-corpus/$$t fuzz/corpus/$$t \
	    || { echo "fuzz $$t: crash or hang found, input in fuzz/crashes/"; exit 1; }; \
	done

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache $(NATIVE_SO) src/tickpath/venues/binance/_core*.so src/tickpath/ingest/_decode*.so
