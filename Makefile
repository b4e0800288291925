# aufacial: two commands on a fresh machine (see README):
#   make demo   create .venv, install, run the main job on the embedded synthetic data
#   make test   create .venv, install, check notebooks == package, run every notebook and every pytest test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: install demo test drift nbtest pytest export clean-nbs readme bench

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; set PY=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "facenet-pytorch==2.6.0"
	touch $(STAMP)

install: $(STAMP)

## README command 1: set up and run the main job on the embedded synthetic data.
demo: install
	$(BIN)/aufacial-demo --out $(DEMO_OUT)

## README command 2: every test.
test: install drift nbtest pytest

## nbdev-export and nbdev-clean must leave the tree as committed: notebooks and package never drift apart.
drift: install
	@before=$$( (git status --porcelain=v1 -uall -- aufacial nbs README.md; git diff -- aufacial nbs README.md) | md5sum); \
	$(BIN)/nbdev-export; $(BIN)/nbdev-clean; $(BIN)/python scripts/nb2readme.py nbs/index.ipynb README.md; \
	after=$$( (git status --porcelain=v1 -uall -- aufacial nbs README.md; git diff -- aufacial nbs README.md) | md5sum); \
	if [ "$$before" != "$$after" ]; then echo "drift check FAILED: nbdev-export/nbdev-clean/README generation changed these files:"; \
	  git status --short -- aufacial nbs README.md; exit 1; fi; echo "drift check passed: export, clean and README leave the tree unchanged"

## Every notebook, with `slow` and `cuda` cells skipped (tst_flags); fails if no notebook ran.
## Each notebook runs in its own process, as in its own kernel: nbdev-test's worker pool runs several notebooks in one
## process, where a class a notebook defines (e.g. 06's EncoderConfig) shadows the package's for the next notebook.
nbtest: install
	@files=$$(ls nbs/*.ipynb | grep -v -e '/_' -e '_draft'); n=$$(echo "$$files" | grep -c . || true); \
	[ "$$n" -gt 0 ] || { echo "no notebooks found"; exit 1; }; \
	echo "nbdev-test: $$n notebooks, each in its own process, 2 at a time"; \
	failed=$$(echo "$$files" | xargs -P 2 -I{} sh -c '$(BIN)/nbdev-test "{}" --timing >&2 || echo "{}"'); \
	if [ -n "$$failed" ]; then echo "nbdev-test FAILED:" $$failed; exit 1; fi; \
	echo "nbdev-test: $$n notebooks passed, 0 failed"

pytest: install
	$(BIN)/python -m pytest tests -q -n 2 --dist loadfile

export: install
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && $(BIN)/python scripts/nb2readme.py nbs/index.ipynb README.md

## Every throughput benchmark once, printing its numbers and ratios: GPU sizes when CUDA is present, else CPU sizes.
GPU := $(shell $(BIN)/python -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null)
bench: install
ifeq ($(GPU),1)
	$(BIN)/python scripts/bench_methods.py --method temporal_contrastive --preset paper --device cuda --bf16 --channels-last --batch-size 64 --steps 20 --rounds 2 --workers 8
	$(BIN)/python scripts/bench_methods.py --method person_independent --preset paper --device cuda --bf16 --channels-last --batch-size 64 --steps 20 --rounds 2 --workers 8
	$(BIN)/python scripts/bench_methods.py --method temporal_contrastive --preset paper --device cuda --bf16 --channels-last --batch-size 64 --steps 20 --rounds 3 --compare-compile
	$(BIN)/python scripts/bench_mae.py --preset vit_base --device cuda --bf16 --batch-size 256 --steps 40 --rounds 4 --workers 8
	$(BIN)/python scripts/bench_finetune.py --preset paper --device cuda --bs 32 --steps 300
	$(BIN)/python scripts/bench_pretrain.py --device cuda
	$(BIN)/python scripts/bench_augment.py --device cuda
else
	$(BIN)/python scripts/bench_methods.py --method temporal_contrastive --preset cpu_small --device cpu --batch-size 16 --steps 8
	$(BIN)/python scripts/bench_methods.py --method person_independent --preset cpu_small --device cpu --batch-size 16 --steps 8
	$(BIN)/python scripts/bench_methods.py --method temporal_contrastive --preset cpu_small --device cpu --batch-size 16 --steps 10 --rounds 5 --compare-compile
	$(BIN)/python scripts/bench_mae.py --preset tiny --device cpu --batch-size 32 --steps 20 --workers 1 --threads 1
	$(BIN)/python scripts/bench_finetune.py --preset cpu --device cpu --bs 8 --steps 48 --n-videos 3 --n-frames 200
	$(BIN)/python scripts/bench_pretrain.py --tiny --device cpu
	$(BIN)/python scripts/bench_augment.py --device cpu
endif
	$(BIN)/python scripts/bench_synthetic.py --tree-subjects 0
	$(BIN)/python scripts/bench_data.py
