"""The BIO tag scheme: tag vocabularies, spans from tag sequences and back.

A tag is ``O`` or ``B-<label>`` / ``I-<label>``, where the label is the entity
type (``Disease``, ``Chemical``).  Spans here are token offsets ``(start, end,
label)`` with an exclusive end, the form ``doc.ents`` is built from.
"""

from __future__ import annotations

import functools
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy

OUTSIDE = "O"

TokenSpan = Tuple[int, int, str]


def make_tags(labels: Iterable[str]) -> List[str]:
    """Build the tag vocabulary for entity labels: ``O`` first, then B-/I- per label.

    The order is fixed (labels sorted) so that tag ids, and with them the rows
    of the classification head, are the same on every machine.
    """
    tags = [OUTSIDE]
    for label in sorted(set(labels)):
        tags.append(f"B-{label}")
        tags.append(f"I-{label}")
    return tags


def split_tag(tag: str) -> Tuple[str, Optional[str]]:
    """Split ``B-Disease`` into ``("B", "Disease")``; ``O`` gives ``("O", None)``.

    Raises:
        ValueError: when the tag is not ``O``, ``B-<label>`` or ``I-<label>``.
    """
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, label = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not label:
        raise ValueError(
            f"Invalid BIO tag {tag!r}: expected 'O', 'B-<label>' or 'I-<label>'."
        )
    return prefix, label


def tags_to_spans(tags: Sequence[Optional[str]]) -> List[TokenSpan]:
    """Decode a BIO tag sequence into non-overlapping token spans.

    Every sequence decodes, and every span is valid (non-empty, inside the
    sequence, never overlapping).  The rules for sequences that are not
    well-formed BIO follow conlleval, the script BioBERT's scores come from:

    - an ``I-X`` that follows ``O``, the start, or a tag of another type opens
      a new entity of type X, as if it were ``B-X``;
    - ``None`` (a token without a prediction) closes any open entity.
    """
    spans: List[TokenSpan] = []
    start: Optional[int] = None
    label: Optional[str] = None
    for i, tag in enumerate(tags):
        if tag is None or tag == OUTSIDE:
            prefix, tag_label = OUTSIDE, None
        else:
            prefix, tag_label = split_tag(tag)
        continues = prefix == "I" and start is not None and tag_label == label
        if continues:
            continue
        if start is not None:
            spans.append((start, i, label))
            start, label = None, None
        if prefix in ("B", "I"):
            start, label = i, tag_label
    if start is not None:
        spans.append((start, len(tags), label))
    return spans


def drop_orphan_inside(tags: Sequence[Optional[str]]) -> List[Optional[str]]:
    """Read every ``I-X`` that does not continue a ``B-X`` or ``I-X`` as ``O``.

    This is how seqeval's strict IOB2 mode counts entities: one that does not
    start with ``B-`` is not an entity.  ``None`` stays ``None``.
    """
    result: List[Optional[str]] = []
    previous: Optional[str] = None
    for tag in tags:
        if tag is not None and tag.startswith("I-"):
            continues = previous is not None and previous != OUTSIDE and previous[2:] == tag[2:]
            tag = tag if continues else OUTSIDE
        result.append(tag)
        previous = tag
    return result


def spans_to_tags(spans: Iterable[TokenSpan], length: int) -> List[str]:
    """Encode non-overlapping token spans as a BIO tag sequence of ``length`` tokens.

    Raises:
        ValueError: when a span is empty, outside ``range(length)`` or overlaps another.
    """
    tags = [OUTSIDE] * length
    for start, end, label in sorted(spans):
        if not 0 <= start < end <= length:
            raise ValueError(
                f"Span ({start}, {end}, {label!r}) is empty or outside a sequence of "
                f"{length} tokens."
            )
        if any(tag != OUTSIDE for tag in tags[start:end]):
            raise ValueError(f"Span ({start}, {end}, {label!r}) overlaps another span.")
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def biluo_to_bio(tag: Optional[str]) -> Optional[str]:
    """Map one BILUO tag (spaCy's gold alignment output) to BIO.

    ``None`` and ``"-"`` (a token whose gold tag is unknown because the
    tokenizations disagree) both map to ``None``.
    """
    if tag is None or tag == "-":
        return None
    if tag == OUTSIDE:
        return OUTSIDE
    prefix, _, label = tag.partition("-")
    if prefix in ("B", "U"):
        return f"B-{label}"
    return f"I-{label}"


def allowed_transitions(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Return which tags may open a sequence and which may follow which, as boolean arrays.

    ``I-X`` may only follow ``B-X`` or ``I-X``; every other tag may come
    anywhere.  Shapes: ``(n_tags,)`` and ``(n_tags, n_tags)``, the latter
    indexed ``[previous, next]``.
    """
    n_tags = len(tags)
    parsed = [split_tag(tag) for tag in tags]
    start = numpy.ones(n_tags, dtype=bool)
    follows = numpy.ones((n_tags, n_tags), dtype=bool)
    for j, (prefix, label) in enumerate(parsed):
        if prefix == "I":
            start[j] = False
            follows[:, j] = [
                previous_label == label and previous_prefix in ("B", "I")
                for previous_prefix, previous_label in parsed
            ]
    return start, follows


def piece_runs(has_piece: Sequence[bool]) -> List[Tuple[int, int]]:
    """Return the ``(start, end)`` ranges of consecutive tokens that have word pieces.

    A token without word pieces carries no prediction, so it separates the
    sequences that are decoded, and trained with a CRF, on their own.
    """
    runs: List[Tuple[int, int]] = []
    run_start = None
    for i in range(len(has_piece) + 1):
        inside = i < len(has_piece) and has_piece[i]
        if inside and run_start is None:
            run_start = i
        elif not inside and run_start is not None:
            runs.append((run_start, i))
            run_start = None
    return runs


# Added to the score of a transition that breaks the BIO scheme: low enough
# that no such sequence wins, finite so that sums stay free of NaN.
FORBIDDEN = -1e9

LearnedScores = Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]


def best_valid_tags(
    scores: numpy.ndarray,
    tags: Sequence[str],
    has_piece: Sequence[bool],
    learned: Optional[LearnedScores] = None,
) -> List[Optional[str]]:
    """Find the highest-scoring well-formed BIO sequence (Viterbi), token by token.

    ``scores`` has one row of tag scores per token: log-probabilities, or a
    CRF's emission scores.  ``learned`` adds a CRF's (opening, transition,
    closing) scores, shapes ``(n_tags,)``, ``(n_tags, n_tags)`` indexed
    ``[previous, next]`` and ``(n_tags,)``.  A token without word pieces gets
    ``None`` and ends the run before it, so each run of tokens with pieces is
    decoded on its own, as ``tags_to_spans`` would close an entity there.
    """
    opening, transition, closing = constrained_scores(tags, learned)
    result: List[Optional[str]] = [None] * len(has_piece)
    for start, end in piece_runs(has_piece):
        path = _viterbi(scores[start:end], opening, transition, closing)
        for offset, tag_id in enumerate(path):
            result[start + offset] = tags[tag_id]
    return result


def constrained_scores(
    tags: Sequence[str], learned: Optional[LearnedScores] = None
) -> LearnedScores:
    """Return (opening, transition, closing) scores: ``learned`` (or zeros), with ``FORBIDDEN`` added where BIO forbids."""
    start, follows = _cached_allowed_transitions(tuple(tags))
    n_tags = len(tags)
    if learned is None:
        learned = (numpy.zeros(n_tags), numpy.zeros((n_tags, n_tags)), numpy.zeros(n_tags))
    opening, transition, closing = (numpy.asarray(a, dtype="float64") for a in learned)
    return (
        opening + numpy.where(start, 0.0, FORBIDDEN),
        transition + numpy.where(follows, 0.0, FORBIDDEN),
        closing,
    )


@functools.lru_cache(maxsize=16)
def _cached_allowed_transitions(tags: Tuple[str, ...]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    # Decoding asks for the same tag set once per sentence; the arrays are
    # only read, never changed in place, so one copy can serve every call.
    return allowed_transitions(tags)


def _viterbi(
    scores: numpy.ndarray,
    opening: numpy.ndarray,
    transition: numpy.ndarray,
    closing: numpy.ndarray,
) -> List[int]:
    score = scores[0] + opening
    backpointers = []
    for row in scores[1:]:
        candidates = score[:, None] + transition
        best_previous = candidates.argmax(axis=0)
        backpointers.append(best_previous)
        score = candidates[best_previous, numpy.arange(len(row))] + row
    score = score + closing
    path = [int(score.argmax())]
    for best_previous in reversed(backpointers):
        path.append(int(best_previous[path[-1]]))
    return path[::-1]
