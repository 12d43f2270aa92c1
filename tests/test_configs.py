"""The shipped training configs: each opens with its launch command and passes spacy debug config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from confection import Config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# (config, train file, dev file), relative to the corpora folder.
CORPORA = {
    "ner_cpu.cfg": ("ncbi_disease/iob/train.tsv", "ncbi_disease/iob/devel.tsv"),
    "biobert_ner.cfg": ("ncbi_disease/iob/train.tsv", "ncbi_disease/iob/devel.tsv"),
    "bc5cdr_cpu.cfg": (
        "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt",
        "bc5cdr/pubtator/CDR_DevelopmentSet.PubTator.txt",
    ),
    "bc5cdr_iob_cpu.cfg": ("bc5cdr/iob_both/train.tsv", "bc5cdr/iob_both/devel.tsv"),
}


def test_every_config_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.cfg")) == sorted(CORPORA)


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_config_opens_with_launch_command(name):
    header = (CONFIGS / name).read_text(encoding="utf-8").split("\n[", 1)[0]
    assert header.startswith("# ")
    assert f"python -m spacy train configs/{name}" in header


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(CORPORA))
def test_config_is_valid(name, shared_data):
    train, dev = CORPORA[name]
    result = subprocess.run(
        [
            sys.executable, "-m", "spacy", "debug", "config", str(CONFIGS / name),
            "--paths.train", str(shared_data / train),
            "--paths.dev", str(shared_data / dev),
            "--paths.encoder", "any-encoder-name",
        ],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Config is valid" in result.stdout


def test_bc5cdr_iob_config_matches_ner_cpu():
    # The accuracy benchmark trains BC5CDR with ner_cpu.cfg and entity_type =
    # null, so this config may differ from it only in entity types and budget.
    ncbi = Config().from_disk(CONFIGS / "ner_cpu.cfg", interpolate=False)
    bc5cdr = Config().from_disk(CONFIGS / "bc5cdr_iob_cpu.cfg", interpolate=False)
    for config in (ncbi, bc5cdr):
        for corpus in ("train", "dev"):
            config["corpora"][corpus]["entity_type"] = None
        for key in ("max_steps", "eval_frequency"):
            config["training"][key] = None
        config["training"]["optimizer"]["learn_rate"].update(warmup_steps=None, total_steps=None)
    assert bc5cdr == ncbi
