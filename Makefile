# Every target sets itself up: a virtualenv in .venv with the package and its
# dev extra installed. The stamp file is rebuilt whenever pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG := config/aggregator.toml
# feedparser's own test feeds, for tests/test_feedparser_corpus.py (issue 3).
CORPUS_VERSION := 6.0.11
CORPUS         := .cache/feedparser-tests
CORPUS_STAMP   := $(CORPUS)/.feedparser-$(CORPUS_VERSION)

.PHONY: run test test-fast test-stress lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/aggregator --config $(CONFIG) ingest
	$(BIN)/aggregator --config $(CONFIG) clusters
	$(BIN)/aggregator --config $(CONFIG) stories
	$(BIN)/aggregator --config $(CONFIG) duplicates
	$(BIN)/aggregator --config $(CONFIG) digest

# Fetched from the package index as a setup step, like pip install (the tests
# themselves never touch the network): the sdist's tests/wellformed, illformed,
# encoding and entities folders, extracted with tarfile's 'data' filter.
$(CORPUS_STAMP): | $(STAMP)
	rm -rf $(CORPUS) .cache/sdist
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
		feedparser==$(CORPUS_VERSION) -d .cache/sdist
	$(BIN)/python -c 'import sys, tarfile; \
		tar = tarfile.open(sys.argv[1]); \
		want = {("tests", folder) for folder in sys.argv[3:]}; \
		keep = [m.replace(name=m.name.split("/", 2)[2]) for m in tar \
			if tuple(m.name.split("/")[1:3]) in want]; \
		tar.extractall(sys.argv[2], members=keep, filter="data")' \
		.cache/sdist/feedparser-$(CORPUS_VERSION).tar.gz $(CORPUS) \
		wellformed illformed encoding entities
	rm -rf .cache/sdist
	touch $@

# The whole suite, on both cores (pytest-xdist). docs/testing.md says how it is kept
# free of timing-dependent verdicts.
test: $(STAMP) $(CORPUS_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

# Everything but the long subprocess tests (@pytest.mark.slow): under a minute.
# A tenth of the fuzz budget (the recorded failures are still replayed).
test-fast: $(STAMP)
	FUZZ_BUDGET=0.1 $(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not slow"

# `make test` STRESS_RUNS times in a row beside `stress-ng --cpu 2 --io 1`;
# STRESS_ARGS=--fresh runs them in a fresh clone of HEAD.
STRESS_RUNS ?= 5
STRESS_ARGS ?=
test-stress:
	.ci/stress $(STRESS_ARGS) $(STRESS_RUNS)

lint: $(STAMP)
	$(BIN)/ruff check aggregator tests bench
	$(BIN)/ruff format --check aggregator tests bench
	$(BIN)/mypy aggregator
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.ingest --sizes 1000,10000

# The feed polling benchmark (docs/benchmarks.md): ours against PyPI reader 3.27,
# which needs Python >= 3.12 and gets its own virtualenv. With no such Python
# (or if reader cannot be installed), the benchmark says so and runs ours alone.
READER_VERSION   := 3.27
READER_VENV      := .venv-reader
READER_STAMP     := $(READER_VENV)/.reader-$(READER_VERSION)
READER_PYTHON    ?= $(shell for p in python3.14 python3.13 python3.12 \
	$$HOME/.pyenv/versions/3.1[2-9]*/bin/python; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { command -v $$p; break; }; done)
BENCH_FEEDS_ARGS ?= --feeds 1000 --entries 20 --rounds 3

.PHONY: bench-feeds

$(READER_STAMP):
	$(READER_PYTHON) -m venv $(READER_VENV)
	$(READER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(READER_VENV)/bin/python -m pip install --quiet reader==$(READER_VERSION)
	touch $@

bench-feeds: $(STAMP)
	@if [ -z "$(READER_PYTHON)" ]; then \
		echo "bench-feeds: no Python >= 3.12 found (reader $(READER_VERSION) needs one)"; \
	else $(MAKE) --no-print-directory $(READER_STAMP) \
		|| echo "bench-feeds: could not set up reader $(READER_VERSION)"; fi
	$(BIN)/python -m bench.feeds $(BENCH_FEEDS_ARGS)

# The long soak (issue 6, docs/reliability.md): the daemon against 1,000 fault-injecting
# loopback feeds for 30 minutes, readers beside it; report.md, report.json, daemon.log
# and ledger.json go to var/soak/.
SOAK_ARGS ?= --feeds 1000 --minutes 30

.PHONY: soak soak-nodes

soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Several nodes (issue 17): 3 fetch + 2 dedup nodes on a throwaway PostgreSQL
# against the fault farm for 5 minutes, a fetch node and then the writer killed.
soak-nodes: $(STAMP)
	$(BIN)/python -m bench.nodesoak --minutes 5 --feeds 100 --out .cache/soak-nodes $(SOAK_NODES_ARGS)

# The system service (README, "Running as a service"), run as root: the package in
# its own virtualenv (and a link on root's PATH), the unit, its system user, the service configuration (an
# existing one is kept), the README for the unit's Documentation=, and the state
# directory owned by the service's user. DESTDIR stages all of it under another
# root instead (tests/test_install.py does, with INSTALL_VENV=no: no download).
OPT          := $(DESTDIR)/opt/aggregator
DOC          := $(DESTDIR)/usr/share/doc/aggregator
INSTALL_VENV ?= yes

.PHONY: install-service

install-service:
	@[ -n "$(DESTDIR)" ] || [ "$$(id -u)" = 0 ] \
		|| { echo "install-service: run it as root (sudo make install-service)" >&2; exit 1; }
	@if [ "$(INSTALL_VENV)" = yes ]; then \
		set -e; $(PYTHON) -m venv $(OPT) \
		|| { echo "install-service: no venv module (Debian: apt install python3-venv)" >&2; \
		exit 1; }; \
		$(OPT)/bin/python -m pip install --quiet --upgrade pip; \
		$(OPT)/bin/python -m pip install --quiet .; \
		install -d $(DESTDIR)/usr/local/bin; \
		ln -sf /opt/aggregator/bin/aggregator $(DESTDIR)/usr/local/bin/aggregator; fi
	install -D -m 0644 systemd/aggregator.service $(DESTDIR)/etc/systemd/system/aggregator.service
	install -D -m 0644 systemd/aggregator@.service $(DESTDIR)/etc/systemd/system/aggregator@.service
	install -D -m 0644 systemd/aggregator.sysusers $(DESTDIR)/usr/lib/sysusers.d/aggregator.conf
	install -D -m 0644 README.md $(DOC)/README.md
	install -D -m 0644 config/aggregator.toml $(DOC)/aggregator.toml.example
	[ -e $(DESTDIR)/etc/aggregator/aggregator.toml ] \
		|| install -D -m 0644 config/service.toml $(DESTDIR)/etc/aggregator/aggregator.toml
	@if [ -z "$(DESTDIR)" ]; then \
		set -ex; systemd-sysusers /usr/lib/sysusers.d/aggregator.conf; \
		install -d -o aggregator -g aggregator -m 0750 /var/lib/aggregator; \
		systemctl daemon-reload; \
	else install -d -m 0750 $(DESTDIR)/var/lib/aggregator; fi

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .cache
