"""The BIO tag scheme: tag vocabularies, spans from tag sequences and back.

A tag is ``O`` or ``B-<label>`` / ``I-<label>``, where the label is the entity
type (``Disease``, ``Chemical``).  Spans here are token offsets ``(start, end,
label)`` with an exclusive end, the form ``doc.ents`` is built from.
"""

from __future__ import annotations

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


def best_valid_tags(
    log_probs: numpy.ndarray, tags: Sequence[str], has_piece: Sequence[bool]
) -> List[Optional[str]]:
    """Find the most probable well-formed BIO sequence (Viterbi), token by token.

    ``log_probs`` has one row of tag log-probabilities per token.  A token
    without word pieces gets ``None`` and ends the segment before it, so each
    run of tokens with pieces is decoded on its own, as ``tags_to_spans`` would
    close an entity there.
    """
    start, follows = allowed_transitions(tags)
    forbidden = numpy.float32(-1e9)
    transition = numpy.where(follows, numpy.float32(0.0), forbidden)
    opening = numpy.where(start, numpy.float32(0.0), forbidden)
    result: List[Optional[str]] = [None] * len(has_piece)
    segment_start = None
    for i in range(len(has_piece) + 1):
        inside = i < len(has_piece) and has_piece[i]
        if inside and segment_start is None:
            segment_start = i
        elif not inside and segment_start is not None:
            path = _viterbi(log_probs[segment_start:i], opening, transition)
            for offset, tag_id in enumerate(path):
                result[segment_start + offset] = tags[tag_id]
            segment_start = None
    return result


def _viterbi(
    log_probs: numpy.ndarray, opening: numpy.ndarray, transition: numpy.ndarray
) -> List[int]:
    score = log_probs[0] + opening
    backpointers = []
    for row in log_probs[1:]:
        candidates = score[:, None] + transition
        best_previous = candidates.argmax(axis=0)
        backpointers.append(best_previous)
        score = candidates[best_previous, numpy.arange(len(row))] + row
    path = [int(score.argmax())]
    for best_previous in reversed(backpointers):
        path.append(int(best_previous[path[-1]]))
    return path[::-1]
