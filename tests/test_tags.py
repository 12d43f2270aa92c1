import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacy_biobert.tags import (
    biluo_to_bio,
    make_tags,
    spans_to_tags,
    split_tag,
    tags_to_spans,
)


def test_make_tags_order():
    assert make_tags(["Disease", "Chemical", "Disease"]) == [
        "O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease",
    ]


@pytest.mark.parametrize(
    "tags,spans",
    [
        (["B-D", "I-D", "O", "B-C"], [(0, 2, "D"), (3, 4, "C")]),
        # An I- after O opens an entity, as in conlleval.
        (["O", "I-D", "I-D", "O"], [(1, 3, "D")]),
        # An I- at the very start opens an entity.
        (["I-D", "O"], [(0, 1, "D")]),
        # An I- of another type closes the open entity and opens a new one.
        (["B-D", "I-C", "I-C"], [(0, 1, "D"), (1, 3, "C")]),
        # B- directly after B- of the same type: two entities.
        (["B-D", "B-D"], [(0, 1, "D"), (1, 2, "D")]),
        # A token without a prediction closes the entity.
        (["B-D", None, "I-D"], [(0, 1, "D"), (2, 3, "D")]),
        ([], []),
        (["O", "O"], []),
    ],
)
def test_tags_to_spans_cases(tags, spans):
    assert tags_to_spans(tags) == spans


def test_split_tag_rejects_invalid():
    with pytest.raises(ValueError, match="Invalid BIO tag 'X-D'"):
        split_tag("X-D")
    with pytest.raises(ValueError):
        split_tag("B-")


tag_strategy = st.sampled_from(["O", "B-D", "I-D", "B-C", "I-C", None])


@given(st.lists(tag_strategy, max_size=40))
def test_decoding_any_sequence_gives_valid_spans(tags):
    spans = tags_to_spans(tags)
    previous_end = 0
    for start, end, label in spans:
        assert previous_end <= start < end <= len(tags)
        assert label in ("D", "C")
        previous_end = end
    # Encoding the decoded spans and decoding again is stable.
    assert tags_to_spans(spans_to_tags(spans, len(tags))) == spans


def test_spans_to_tags_rejects_overlap():
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([(0, 2, "D"), (1, 3, "D")], 4)


def test_biluo_to_bio():
    assert [biluo_to_bio(t) for t in ["U-D", "B-D", "I-D", "L-D", "O", "-", None]] == [
        "B-D", "B-D", "I-D", "I-D", "O", None, None,
    ]
