"""How entity scores are counted: conlleval, seqeval's default mode and seqeval's strict IOB2 mode.

biobert_ner decodes tags with the conlleval rule, so ``doc.ents`` is always a
set of well-formed entities.  Written back as IOB2, those entities score the
same under all three counts.  The counts differ only on raw tag sequences that
are not well-formed IOB2, such as an ``I-`` tag after ``O``: conlleval and
seqeval's default mode open an entity there, and seqeval's strict mode drops it.
"""

from __future__ import annotations

import pytest
from seqeval.metrics import f1_score
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from spacy_biobert.tags import spans_to_tags, tags_to_spans


def seqeval_default_spans(tags):
    return [(start, end + 1, label) for label, start, end in get_entities(tags)]


def seqeval_strict_spans(tags):
    return [(e.start, e.end, e.tag) for e in Entities([tags], IOB2).entities[0]]


MALFORMED = [
    # (tags, conlleval spans, strict IOB2 spans)
    (["O", "I-D", "I-D", "O"], [(1, 3, "D")], []),
    (["I-D", "O"], [(0, 1, "D")], []),
    (["B-D", "I-C", "I-C"], [(0, 1, "D"), (1, 3, "C")], [(0, 1, "D")]),
]


@pytest.mark.parametrize("tags,conlleval,strict", MALFORMED)
def test_malformed_sequences_split_the_counts(tags, conlleval, strict):
    assert tags_to_spans(tags) == conlleval
    assert seqeval_default_spans(tags) == conlleval
    assert seqeval_strict_spans(tags) == strict


@pytest.mark.parametrize("tags,conlleval,strict", MALFORMED)
def test_decoded_entities_score_alike(tags, conlleval, strict):
    exported = spans_to_tags(tags_to_spans(tags), len(tags))
    assert seqeval_strict_spans(exported) == conlleval
    assert seqeval_default_spans(exported) == conlleval


def test_strict_f1_lower_on_malformed_predictions():
    gold = [["O", "B-D", "I-D", "O"]]
    predicted = [["O", "I-D", "I-D", "O"]]
    assert f1_score(gold, predicted) == 1.0
    assert f1_score(gold, predicted, mode="strict", scheme=IOB2) == 0.0
