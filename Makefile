# sparkdist: two commands on a fresh machine with Java 17+
#   make demo   creates .venv, installs sparkdist with its test tools, runs the demo job
#   make test   runs the whole test suite (no-JVM contexts, then local[2], local-cluster, Spark Connect,
#               a real standalone cluster, a real Spark Connect server, notebooks)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export SPARK_CONF_DIR := $(CURDIR)/conf
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
PYTEST := $(PY) -m pytest -q -p no:randomly

.PHONY: demo test setup java lint test-none test-local test-cluster test-connect test-standalone test-connect-server \
	test-notebooks bench soak clean

demo: setup
	$(PY) examples/demo.py

java:
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
	  echo "sparkdist needs Java 17+ (found: $${v:-none}); install it with: apt-get install -y openjdk-17-jre-headless"; exit 1; fi

$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory java
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(PY) -m ruff check sparkdist tests examples benchmarks
	$(PY) -m ruff format --check sparkdist tests examples benchmarks
	$(PY) -m mypy

test-none: setup
	$(PYTEST)
test-local: setup
	$(PYTEST) tests --spark-mode=local
test-cluster: setup
	$(PYTEST) tests --spark-mode=cluster
test-connect: setup
	$(PYTEST) tests --spark-mode=connect
# tests/_cluster.py starts a standalone master and 2 workers (and a Spark Connect server) on 127.0.0.1;
# executors run .venv-executors (numpy, pandas, pyarrow only; built on first use from pip's cache)
test-standalone: setup
	$(PYTEST) tests --spark-mode=standalone
test-connect-server: setup
	$(PYTEST) tests --spark-mode=connect-server
test-notebooks: setup
	$(PYTEST) --nbmake notebooks

test: setup lint test-none test-local test-cluster test-connect test-standalone test-connect-server test-notebooks

bench: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_distribute.py
	$(PY) benchmarks/bench_exec.py
	$(PY) benchmarks/bench_exec.py --connect
	$(PY) benchmarks/bench_pema.py
	$(PY) benchmarks/bench_parquet.py

soak: setup
	for mode in inproc parallel local cluster connect; do (cd benchmarks && ../$(PY) soak.py --mode $$mode) || exit 1; done

clean:
	rm -rf $(VENV) .venv-executors .venv-executors.lock build *.egg-info
