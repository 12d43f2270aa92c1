import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacy_biobert.tags import (
    best_valid_tags,
    biluo_to_bio,
    drop_orphan_inside,
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


VITERBI_TAGS = ["O", "B-C", "I-C", "B-D", "I-D"]


def is_well_formed(tags):
    previous = "O"
    for tag in tags:
        if tag is not None and tag.startswith("I-"):
            if previous is None or previous == "O" or previous[2:] != tag[2:]:
                return False
        previous = tag
    return True


def log_probs_for(rows):
    probs = numpy.asarray(rows, dtype="float32")
    return numpy.log(probs / probs.sum(axis=1, keepdims=True))


def test_viterbi_repairs_i_after_o():
    # Argmax gives O, I-D, I-D; the best valid sequence starts the entity with B-D.
    log_probs = log_probs_for([
        [0.9, 0.02, 0.02, 0.03, 0.03],
        [0.1, 0.05, 0.05, 0.35, 0.45],
        [0.1, 0.05, 0.05, 0.1, 0.7],
    ])
    assert best_valid_tags(log_probs, VITERBI_TAGS, [True, True, True]) == ["O", "B-D", "I-D"]


def test_viterbi_keeps_a_valid_argmax():
    log_probs = log_probs_for([
        [0.1, 0.6, 0.1, 0.1, 0.1],
        [0.1, 0.1, 0.6, 0.1, 0.1],
        [0.6, 0.1, 0.1, 0.1, 0.1],
    ])
    assert best_valid_tags(log_probs, VITERBI_TAGS, [True] * 3) == ["B-C", "I-C", "O"]


def test_viterbi_token_without_piece_ends_the_segment():
    # After the gap, I-D cannot continue the entity, so the next best tag, B-D, opens one.
    log_probs = log_probs_for([[0.1, 0.1, 0.1, 0.6, 0.1]] + [[0.1, 0.05, 0.05, 0.3, 0.5]] * 2)
    tags = best_valid_tags(log_probs, VITERBI_TAGS, [True, False, True])
    assert tags == ["B-D", None, "B-D"]


@given(
    st.lists(
        st.tuples(st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5), st.booleans()),
        max_size=30,
    )
)
def test_viterbi_output_is_always_well_formed(rows):
    log_probs = log_probs_for([row for row, _ in rows]) if rows else numpy.zeros((0, 5), "float32")
    has_piece = [piece for _, piece in rows]
    tags = best_valid_tags(log_probs, VITERBI_TAGS, has_piece)
    assert len(tags) == len(rows)
    assert is_well_formed(tags)
    assert all((tag is None) == (not piece) for tag, piece in zip(tags, has_piece))


@pytest.mark.parametrize(
    "tags,expected",
    [
        (["O", "I-D", "I-D", "O"], ["O", "O", "O", "O"]),
        (["B-D", "I-D", "I-C", "O"], ["B-D", "I-D", "O", "O"]),
        (["B-D", None, "I-D"], ["B-D", None, "O"]),
        (["I-D", "B-D", "I-D"], ["O", "B-D", "I-D"]),
    ],
)
def test_drop_orphan_inside(tags, expected):
    assert drop_orphan_inside(tags) == expected


@given(st.lists(st.sampled_from(["O", "B-C", "I-C", "B-D", "I-D", None]), max_size=20))
def test_dropped_orphans_match_seqeval_strict(tags):
    from seqeval.scheme import IOB2, Entities

    plain = ["O" if tag is None else tag for tag in tags]
    strict = sorted((e.start, e.end, e.tag) for e in Entities([plain], IOB2).entities[0])
    assert sorted(tags_to_spans(drop_orphan_inside(plain))) == strict
