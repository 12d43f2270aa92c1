"""Sentence boundaries for reading raw abstracts one sentence at a time."""

from __future__ import annotations

import pytest
import spacy

from spacy_biobert.readers.iob import read_iob
from spacy_biobert.readers.pubtator import read_pubtator
from spacy_biobert.sentences import sentence_ranges


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank(
        "en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}
    )


def sentences(nlp, text):
    doc = nlp.make_doc(text)
    return [doc[start:end].text for start, end in sentence_ranges(doc)]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("BRCA1 is mutated. Cancer follows!", ["BRCA1 is mutated.", "Cancer follows!"]),
        ("Risk rose (P <. 001). Then it fell.", ["Risk rose (P <. 001).", "Then it fell."]),
        ("It was 58. 3 percent.", ["It was 58.", "3 percent."]),
        ("Given P =. 03 here.", ["Given P =. 03 here."]),
        ("As shown by Smith et al. The gene", ["As shown by Smith et al. The gene"]),
        ("Some drugs, e.g. Aspirin, help.", ["Some drugs, e.g. Aspirin, help."]),
        ("Deficiency type I. We found", ["Deficiency type I.", "We found"]),
        ("The mouse gene. apoB is next.", ["The mouse gene. apoB is next."]),
        ("No space.Next word", ["No space.Next word"]),
        ("Cancer rose.\nNext one fell.", ["Cancer rose.\n", "Next one fell."]),
        ("Cancer rose.  Next one fell.", ["Cancer rose.  ", "Next one fell."]),
        ("Smith et al . The gene", ["Smith et al . The gene"]),
    ],
)
def test_sentence_rule(nlp, text, expected):
    assert sentences(nlp, text) == expected


def test_empty_doc_has_no_sentences(nlp):
    assert sentence_ranges(nlp.make_doc("")) == []


def test_sentences_from_a_component_win(nlp):
    doc = nlp.make_doc("One. Two. Three.")
    for token in doc:
        token.is_sent_start = token.i == 0
    assert sentence_ranges(doc) == [(0, len(doc))]


def test_rule_fills_unset_boundaries(nlp):
    # Only "Two" is marked as not starting a sentence; "Three" is left to the rule.
    doc = nlp.make_doc("One. Two. Three.")
    doc[2].is_sent_start = False
    assert [doc[start:end].text for start, end in sentence_ranges(doc)] == ["One. Two.", "Three."]


def test_unclosed_bracket_stops_mattering(nlp):
    text = "An open (bracket " + "word " * 70 + "ends. The next sentence."
    doc = nlp.make_doc(text)
    assert len(sentence_ranges(doc)) == 2


@pytest.mark.integration
def test_matches_biobert_ncbi_test_sentences(nlp, shared_data):
    # Find where BioBERT's test sentences start in the PubTator abstracts and
    # compare with the rule's sentence starts.
    sentences_iob = [s.words for s in read_iob(shared_data / "ncbi_disease/iob/test.tsv", "Disease")]
    first_index = {}
    for index, words in enumerate(sentences_iob):
        first_index.setdefault(tuple(words[:6]), index)
    found = missed = extra = aligned_docs = 0
    for document in read_pubtator(shared_data / "ncbi_disease/pubtator/NCBItestset_corpus.txt"):
        doc = nlp.make_doc(document.text)
        tokens = [token for token in doc if not token.is_space]
        index = first_index.get(tuple(token.text for token in tokens[:6]))
        if index is None:
            continue
        gold, position = set(), 0
        while position < len(tokens) and index < len(sentences_iob):
            words = sentences_iob[index]
            if [token.text for token in tokens[position : position + len(words)]] != words:
                break
            gold.add(tokens[position].i)
            position += len(words)
            index += 1
        if position < len(tokens):
            continue
        aligned_docs += 1
        predicted = {start for start, _ in sentence_ranges(doc)}
        found += len(gold & predicted)
        missed += len(gold - predicted)
        extra += len(predicted - gold)
    assert aligned_docs == 97
    assert (found, missed, extra) == (915, 3, 0)
