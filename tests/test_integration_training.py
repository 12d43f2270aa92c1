"""``spacy train`` and ``spacy evaluate`` with the MiniLM encoder on a slice of NCBI-disease."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_biobert.cli.convert import convert
from spacy_biobert.readers.pubtator import read_pubtator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
N_STEPS = 60


@pytest.fixture(scope="module")
def trained_minilm(shared_data, minilm_encoder, tmp_path_factory) -> Path:
    """Train configs/ner_cpu.cfg for 60 updates of 32 sentences through the spaCy CLI."""
    iob = shared_data / "ncbi_disease" / "iob"
    output = tmp_path_factory.mktemp("ncbi_minilm")
    command = [
        sys.executable, "-m", "spacy", "train", str(ROOT / "configs" / "ner_cpu.cfg"),
        "--output", str(output),
        "--paths.train", str(iob / "train.tsv"),
        "--paths.dev", str(iob / "devel.tsv"),
        "--paths.encoder", str(minilm_encoder),
        "--corpora.dev.limit", "200",
        "--training.max_steps", str(N_STEPS),
        "--training.eval_frequency", str(N_STEPS),
        "--training.optimizer.learn_rate.warmup_steps", "6",
        "--training.optimizer.learn_rate.total_steps", str(N_STEPS),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output / "model-best"


def test_evaluate_reports_entity_scores(trained_minilm, shared_data, tmp_path):
    test_spacy = tmp_path / "test.spacy"
    convert(shared_data / "ncbi_disease" / "iob" / "test.tsv", test_spacy, entity_type="Disease")
    scores_path = tmp_path / "scores.json"
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "evaluate", str(trained_minilm), str(test_spacy),
         "--output", str(scores_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(scores_path.read_text())
    for key in ("ents_p", "ents_r", "ents_f", "ents_per_type"):
        assert key in scores
    assert set(scores["ents_per_type"]) == {"Disease"}
    # An untrained head scores about 0.02 and 60 updates about 0.34; the full
    # 680-update demo run reaches about 0.82.
    assert scores["ents_f"] > 0.25
    assert scores["ents_per_type"]["Disease"]["f"] == pytest.approx(scores["ents_f"])


def test_raw_abstracts_keep_text_and_offsets(trained_minilm, shared_data):
    nlp = spacy.load(trained_minilm)
    path = shared_data / "ncbi_disease" / "pubtator" / "NCBItestset_corpus.txt"
    abstracts = [document.text for document in read_pubtator(path)]
    assert len(abstracts) == 100
    docs = list(nlp.pipe(abstracts, batch_size=16))
    n_entities = 0
    for text, doc in zip(abstracts, docs):
        assert doc.text == text
        assert doc.tensor.shape == (len(doc), 384)
        for ent in doc.ents:
            assert text[ent.start_char : ent.end_char] == ent.text
            assert ent.label_ == "Disease"
        n_entities += len(doc.ents)
    # The gold standard has 960 mentions in these abstracts.
    assert 400 < n_entities < 1500
    single = [[(e.start_char, e.end_char) for e in nlp(text).ents] for text in abstracts[:5]]
    assert single == [[(e.start_char, e.end_char) for e in doc.ents] for doc in docs[:5]]


def test_ents_f_equals_strict_iob2_f1(trained_minilm, shared_data):
    # spaCy's scorer on doc.ents and seqeval's strict IOB2 count on the same
    # predictions written as tags must agree exactly.
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2
    from spacy.tokens import Doc
    from spacy.training import Example, iob_to_biluo

    from spacy_biobert.readers.iob import read_iob
    from spacy_biobert.tags import spans_to_tags

    nlp = spacy.load(trained_minilm)
    sentences = list(read_iob(shared_data / "ncbi_disease" / "iob" / "test.tsv", "Disease"))
    docs = [Doc(nlp.vocab, words=s.words) for s in sentences]
    for _, component in nlp.pipeline:
        docs = list(component.pipe(docs))
    predicted_tags = [
        spans_to_tags([(e.start, e.end, e.label_) for e in doc.ents], len(doc)) for doc in docs
    ]
    gold_tags = [s.tags for s in sentences]
    examples = [
        Example.from_dict(doc, {"entities": iob_to_biluo(s.tags)})
        for doc, s in zip(docs, sentences)
    ]
    ents_f = nlp.get_pipe("ner").score(examples)["ents_f"]
    strict_f = f1_score(gold_tags, predicted_tags, mode="strict", scheme=IOB2)
    assert ents_f > 0.25
    assert ents_f == pytest.approx(strict_f, abs=1e-12)
