# Two entry points for a new user: `make demo` and `make test`. Each installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORK ?= work

.PHONY: demo test bench train-tiny system-deps install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray,lm,baselines,tts,formats]'
	touch $(STAMP)

# Debian packages the tests use: chromium renders the HTML WER report, espeak-ng, flite, festival (with its
# ked_diphone voice), SVOX pico and RHVoice synthesise speech, fortunes is the sentence recipe's prose,
# docker-compose validates docker-compose.yml (no Docker engine), sctk is NIST's sclite that tests/test_trn.py
# checks `asr score` against (Debian keeps it off PATH, in /usr/lib/sctk/bin, behind its `sctk` wrapper). pico (libttspico-utils) and RHVoice are in
# Debian's non-free component, which Debian images leave out: when one is missing, non-free is added for this
# release in its own sources file.
NON_FREE_SOURCES = /etc/apt/sources.list.d/asr-non-free.sources
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v flite >/dev/null || missing="$$missing flite"; \
	[ -d /usr/share/festival/voices/english/ked_diphone ] || missing="$$missing festival festvox-kdlpc16k"; \
	command -v pico2wave >/dev/null || missing="$$missing libttspico-utils"; \
	command -v RHVoice-test >/dev/null || missing="$$missing rhvoice rhvoice-english"; \
	[ -f /usr/share/games/fortunes/wisdom ] || missing="$$missing fortunes fortunes-min"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v sclite >/dev/null || [ -x /usr/lib/sctk/bin/sclite ] || missing="$$missing sctk"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  case "$$missing" in *libttspico-utils*|*rhvoice*) [ -f $(NON_FREE_SOURCES) ] || { . /etc/os-release; [ "$$ID" = debian ] && \
	    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: non-free\nSigned-By: %s\n' \
	      "$$VERSION_CODENAME" /usr/share/keyrings/debian-archive-keyring.gpg > $(NON_FREE_SOURCES); };; \
	  esac; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The bundled sample corpus through the bundled model: prepare (one file is broken on purpose, so `asr prepare`
# exits 1 = "rows rejected and reported"), transcribe and score, print the report.
demo: install
	$(BIN)/asr prepare tsv asr/samples --out $(WORK)/demo/sample.jsonl --config asr/assets/default_model/config.yaml --purpose eval \
	    --quiet || [ $$? -eq 1 ]
	@echo "--- rejected rows:"; cat $(WORK)/demo/sample.rejects.jsonl
	$(BIN)/asr transcribe asr/samples/audio --quiet || [ $$? -eq 1 ]
	$(BIN)/asr evaluate --manifest $(WORK)/demo/sample.jsonl --report $(WORK)/demo/report --quiet
	@echo "--- $(WORK)/demo/report/report.md (also report.html):"; head -n 40 $(WORK)/demo/report/report.md

test: install system-deps
	$(BIN)/ruff check asr tests pipelines benchmarks
	$(BIN)/pytest -q

# The tiny config end to end: FSDD digits from ../shared/data, speaker-disjoint splits, a few minutes on CPU.
train-tiny: install
	$(BIN)/asr prepare fsdd ../shared/data/fsdd --out $(WORK)/fsdd.jsonl --config configs/tiny.yaml --quiet
	$(BIN)/asr split $(WORK)/fsdd.jsonl --dev 0.2 --test 0.2
	$(BIN)/asr train --config configs/tiny.yaml --out runs/tiny

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) $(WORK) .pytest_cache .ruff_cache
