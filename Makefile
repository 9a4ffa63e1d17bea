# sparkdist: two commands on a fresh machine with Java 17+
#   make demo   creates .venv, installs sparkdist with its test tools, runs the demo job
#   make test   runs the whole test suite (no-JVM contexts, then local[2], local-cluster, Spark Connect,
#               a real standalone cluster, a real Spark Connect server, notebooks, a smoke run with the
#               lowest pyspark of each extra, and the tests on Databricks Runtime 15.4 LTS's libraries)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export SPARK_CONF_DIR := $(CURDIR)/conf
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
PYTEST := $(PY) -m pytest -q -p no:randomly

.PHONY: demo test setup java lint test-none test-local test-cluster test-connect test-standalone test-connect-server \
	test-notebooks bench soak clean test-floors test-pandas-newest docs test-runtime

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
	$(VENV)/bin/lint-imports

test-none: setup
	$(PYTEST)
test-local: setup
	$(PYTEST) tests --spark-mode=local
# local-cluster[2,1,1024]: executors in processes of their own, on this machine's install. The whole
# Spark set runs against separate executors in test-standalone (a real cluster); here the files about
# executors and their failures run (CI's 30-minute budget for all modes).
CLUSTER_TESTS := tests/test_deploy.py tests/test_execute.py tests/test_reliability.py tests/test_spark.py
test-cluster: setup
	$(PYTEST) $(CLUSTER_TESTS) --spark-mode=cluster
# Spark Connect with the server in this process (remote("local[2]")): the whole Spark set runs against a
# separate Connect server in test-connect-server; here the files about jobs, calls and limits run.
CONNECT_TESTS := tests/test_errors.py tests/test_execute.py tests/test_jobs.py tests/test_limits.py tests/test_spark.py
test-connect: setup
	$(PYTEST) $(CONNECT_TESTS) --spark-mode=connect
# tests/_cluster.py starts a standalone master and 2 workers (and a Spark Connect server) on 127.0.0.1;
# executors run .venv-executors (numpy, pandas, pyarrow only; built on first use from pip's cache)
test-standalone: setup
	$(PYTEST) tests --spark-mode=standalone
test-connect-server: setup
	$(PYTEST) tests --spark-mode=connect-server
test-notebooks: setup
	$(PYTEST) --nbmake notebooks

test: setup lint docs test-none test-local test-cluster test-connect test-standalone test-connect-server test-notebooks \
      test-floors test-runtime

# the documentation site (mkdocs.yml, docs/) into build/site; --strict: a broken link, a missing anchor or
# an unresolved API reference fails. Offline: no plugin fetches anything.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir build/site

bench: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_distribute.py
	$(PY) benchmarks/bench_exec.py
	$(PY) benchmarks/bench_exec.py --connect
	$(PY) benchmarks/bench_pema.py
	$(PY) benchmarks/bench_parquet.py
	$(PY) benchmarks/bench_exec_by.py
	$(PY) benchmarks/bench_output.py

soak: setup
	for mode in inproc parallel local cluster connect; do (cd benchmarks && ../$(PY) soak.py --mode $$mode) || exit 1; done

# Lanes: sparkdist in venvs of their own under .venvs/ (gitignored; rebuilt when pyproject.toml changes),
# filled by the dev venv's pip so that its cache serves them. The floors are the lowest pyspark of each
# extra in pyproject.toml (tests/test_install.py checks that they agree).
SPARK_FLOOR   := 3.5.0
CONNECT_FLOOR := 4.0.0
LANE_PIP       = $(PY) -m pip --python $(@D)/bin/python install -q

.venvs/spark-floor/.installed: pyproject.toml $(VENV)/.installed
	rm -rf $(@D) && $(PYTHON) -m venv --without-pip $(@D)
	$(LANE_PIP) "pyspark==$(SPARK_FLOOR)" -e .
	touch $@
.venvs/connect-floor/.installed: pyproject.toml $(VENV)/.installed
	rm -rf $(@D) && $(PYTHON) -m venv --without-pip $(@D)
	$(LANE_PIP) "pyspark[connect]==$(CONNECT_FLOOR)" -e .
	touch $@
.venvs/pandas-newest/.installed: pyproject.toml $(VENV)/.installed
	rm -rf $(@D) && $(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install -q --upgrade pip
	$(@D)/bin/python -m pip install -q -e ".[dev]"
	touch $@

# tests/smoke.py with the lowest pyspark of each extra: classic local[2] with the spark extra's floor,
# classic and Spark Connect (remote("local[2]")) with the connect extra's floor
test-floors: .venvs/spark-floor/.installed .venvs/connect-floor/.installed
	PYSPARK_PYTHON=$(CURDIR)/.venvs/spark-floor/bin/python .venvs/spark-floor/bin/python tests/smoke.py classic
	PYSPARK_PYTHON=$(CURDIR)/.venvs/connect-floor/bin/python .venvs/connect-floor/bin/python tests/smoke.py classic
	PYSPARK_PYTHON=$(CURDIR)/.venvs/connect-floor/bin/python .venvs/connect-floor/bin/python tests/smoke.py connect

# the no-JVM and local[2] test runs with the newest pandas (upgraded on every run), in a venv built
# like the dev venv (the tests use its pip)
test-pandas-newest: .venvs/pandas-newest/.installed
	.venvs/pandas-newest/bin/python -m pip install -q --upgrade pandas
	PYSPARK_PYTHON=$(CURDIR)/.venvs/pandas-newest/bin/python .venvs/pandas-newest/bin/python -m pytest -q -p no:randomly \
	  --ignore=tests/test_install.py
	PYSPARK_PYTHON=$(CURDIR)/.venvs/pandas-newest/bin/python .venvs/pandas-newest/bin/python -m pytest -q -p no:randomly \
	  tests --spark-mode=local --ignore=tests/test_install.py

# sparkdist must install into a runtime without changing it. test-runtime builds a venv afresh with exactly
# Databricks Runtime 15.4 LTS's Python and libraries, installs the built wheel into it (with its
# dependencies, as `%pip install sparkdist` would), stops if pip changed any package that was there
# (pip freeze before and after), adds the test tools with the runtime's pins as constraints, and runs
# tests from outside the checkout (so that they import the installed wheel): RUNTIME_TESTS without a
# JVM, RUNTIME_LOCAL_TESTS on local[2]. Then the same in a venv with the lowest versions pyproject.toml
# allows (pyarrow 8 has no wheel for Python 3.11, hence 3.10), for the files about the Parquet path.
# The files chosen are those whose code the libraries' versions change: data sources and the Parquet
# path (pyarrow, on the driver and on the executors), the results' frames and the numerics (pandas,
# numpy), shipping work (cloudpickle), the Spark jobs of pyspark 3.5 (mapInArrow, Arrow on executors,
# executor_info). Left out to fit CI's 5 minutes with the two venvs: the files about jobs, failures,
# load, limits and deployment (they do not depend on these versions, and start JVMs or process pools of
# their own); on local[2] the Parquet reader comparisons and PEMA (Spark's reader, not these libraries).
# statsmodels / scikit-learn / moto comparisons skip themselves there (test-only libraries the runtime lacks).
# Measured on a shared 2-core machine (load average 13-23): 24 min of wall time but 1 min 36 s of CPU for
# the whole lane (wheel 9 s, each venv about 30 s from pip's cache, 80 s / 249 tests without a JVM).
RUNTIME_PYTHON  ?= python3.11
RUNTIME_PINS    := pyspark==3.5.0 pandas==1.5.3 numpy==1.23.5 pyarrow==14.0.1 cloudpickle==2.2.1
# a Python 3.10: on PATH, else pyenv's (this machine's image has it under ~/.pyenv/versions, not on PATH)
FLOORS_PYTHON   ?= $(firstword $(shell python3.10 -c "import sys; print(sys.executable)" 2>/dev/null) \
                   $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) python3.10)
FLOORS_PINS     := pandas==1.5.0 numpy==1.23.0 pyarrow==8.0.0 cloudpickle==2.2.0 tqdm==4.50.0
RUNTIME_TESTS   := tests/test_runtime.py tests/test_parquet.py tests/test_sources.py tests/test_columns.py \
                   tests/test_distribute.py tests/test_exec_by.py tests/test_execute.py tests/test_pema.py
RUNTIME_LOCAL_TESTS := tests/test_sources.py tests/test_distribute.py tests/test_exec_by.py tests/test_nodes.py
FLOORS_TESTS    := tests/test_runtime.py tests/test_parquet.py tests/test_sources.py tests/test_columns.py
RUNTIME_DIST    := .venvs/runtime-dist
RUNTIME_TOOLS   := pytest chispa psutil

# $(call runtime-venv,DIR,PYTHON,PINS): DIR made afresh with PYTHON and exactly PINS, then the built wheel
define runtime-venv
	@$(2) -c "" 2>/dev/null || { echo "make test-runtime needs $(2) (set it: make test-runtime $(if $(findstring 3.10,$(2)),FLOORS_PYTHON,RUNTIME_PYTHON)=/path/to/python)"; exit 1; }
	rm -rf $(1) && $(2) -m venv --without-pip $(1)
	$(PY) -m pip --python $(1)/bin/python install -q --no-compile $(3)
	printf '%s\n' $(3) > $(1)/pins.txt
	$(PY) -m pip --python $(1)/bin/python freeze | sort > $(1)/before.txt
	$(PY) -m pip --python $(1)/bin/python install -q $(RUNTIME_DIST)/sparkdist-*.whl
	$(PY) -m pip --python $(1)/bin/python freeze | sort > $(1)/after.txt
	@if [ -n "$$(comm -23 $(1)/before.txt $(1)/after.txt)" ]; then \
	  echo "installing sparkdist changed the runtime in $(1): was"; comm -23 $(1)/before.txt $(1)/after.txt; \
	  echo "is now"; comm -13 $(1)/before.txt $(1)/after.txt; exit 1; fi
	$(PY) -m pip --python $(1)/bin/python install -q -c $(1)/pins.txt $(RUNTIME_TOOLS)
endef
# $(call runtime-tests,DIR,LANE,ARGS): pytest in DIR's Python, run from DIR so that the checkout is not imported
runtime-tests = cd $(1) && SPARKDIST_RUNTIME_LANE=$(2) bin/python -m pytest -q -p no:randomly --rootdir=$(CURDIR) \
	-c $(CURDIR)/pyproject.toml $(3)

test-runtime: setup
	rm -rf build $(RUNTIME_DIST) && $(PY) -m pip wheel -q --no-deps --no-build-isolation -w $(RUNTIME_DIST) . && rm -rf build
	$(call runtime-venv,.venvs/dbr-15.4,$(RUNTIME_PYTHON),$(RUNTIME_PINS))
	$(call runtime-tests,.venvs/dbr-15.4,dbr-15.4,$(addprefix $(CURDIR)/,$(RUNTIME_TESTS)))
	$(call runtime-tests,.venvs/dbr-15.4,dbr-15.4,$(addprefix $(CURDIR)/,$(RUNTIME_LOCAL_TESTS)) --spark-mode=local)
	$(call runtime-venv,.venvs/floors,$(FLOORS_PYTHON),$(FLOORS_PINS))
	$(call runtime-tests,.venvs/floors,floors,$(addprefix $(CURDIR)/,$(FLOORS_TESTS)))

clean:
	rm -rf $(VENV) .venvs .venv-executors .venv-executors.lock build *.egg-info
