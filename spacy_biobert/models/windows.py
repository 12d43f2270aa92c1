"""Overlapping word-piece windows, so that a document of any length fits the encoder.

Windows are cut in word pieces, not in spaCy tokens: a window therefore never
exceeds the encoder's maximum, and no word piece is ever truncated away.  Each
token is read at its first word piece. Where windows overlap, a token is seen
by several windows, and its scores are the mean of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy

# [CLS] and [SEP] take two positions of every window.
N_SPECIAL_TOKENS = 2


@dataclass
class EncodedDoc:
    """One document as word pieces, without special tokens.

    piece_ids: the word-piece ids, shape (n_pieces,).
    first_piece: per spaCy token, the index of its first word piece, shape
        (n_tokens,). It is -1 for a token that the encoder's tokenizer drops
        entirely, such as whitespace or control characters.
    segments: piece ranges ``(start, end)`` that windows must not cross, such
        as sentences, in order and covering every piece; None for one segment.
    """

    piece_ids: numpy.ndarray
    first_piece: numpy.ndarray
    segments: Optional[List[Tuple[int, int]]] = None

    @property
    def n_tokens(self) -> int:
        return len(self.first_piece)


def window_starts(n_pieces: int, length: int, stride: int) -> List[int]:
    """Return the first piece of each window so that windows of ``length`` pieces cover ``n_pieces``.

    Windows start every ``stride`` pieces. The last one is moved back to end
    on the last piece, so that it is as long as the others.
    """
    if n_pieces <= length:
        return [0]
    starts = list(range(0, n_pieces - length, stride))
    starts.append(n_pieces - length)
    return starts


@dataclass
class WindowBatch:
    """Windows of several documents, padded into one encoder input.

    input_ids, attention_mask: shape (n_windows, max_len), with [CLS] and [SEP].
    rows, cols: for each (token, window) occurrence, where the token's first
        piece sits in ``input_ids``; shape (n_occurrences,).
    targets: for each occurrence, the token's index among all tokens of the
        documents in the batch, counted document after document.
    """

    input_ids: numpy.ndarray
    attention_mask: numpy.ndarray
    rows: numpy.ndarray
    cols: numpy.ndarray
    targets: numpy.ndarray


@dataclass
class WindowPlan:
    """All windows for a list of documents, grouped into encoder batches."""

    batches: List[WindowBatch]
    n_tokens: List[int]
    # How many windows read each token; 0 for tokens with no word piece.
    counts: numpy.ndarray = field(repr=False)


def plan_windows(
    docs: Sequence[EncodedDoc],
    *,
    window: int,
    stride: int,
    windows_per_batch: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
) -> WindowPlan:
    """Cut documents into overlapping windows and group them into padded batches.

    Windows are sorted by length before batching, so that each batch needs
    little padding; the occurrence arrays put every score back in place.

    Args:
        window: the maximum window length in word pieces, special tokens included.
        stride: how many word pieces one window starts after the previous one.
        windows_per_batch: the maximum number of windows in one encoder call.
    """
    length = window - N_SPECIAL_TOKENS
    token_offsets = numpy.cumsum([0] + [doc.n_tokens for doc in docs])
    counts = numpy.zeros(int(token_offsets[-1]), dtype="int32")
    # (doc index, first piece, last piece + 1) for every window.
    spans: List[Tuple[int, int, int]] = []
    for i, doc in enumerate(docs):
        n_pieces = len(doc.piece_ids)
        if n_pieces == 0:
            continue
        for segment_start, segment_end in doc.segments or [(0, n_pieces)]:
            n_segment = segment_end - segment_start
            for start in window_starts(n_segment, length, stride):
                first = segment_start + start
                spans.append((i, first, min(first + length, segment_end)))
    spans.sort(key=lambda span: span[2] - span[1])

    batches = []
    for batch_start in range(0, len(spans), windows_per_batch):
        batch_spans = spans[batch_start : batch_start + windows_per_batch]
        max_len = max(end - start for _, start, end in batch_spans) + N_SPECIAL_TOKENS
        input_ids = numpy.full((len(batch_spans), max_len), pad_id, dtype="int64")
        attention_mask = numpy.zeros((len(batch_spans), max_len), dtype="int64")
        rows, cols, targets = [], [], []
        for row, (i, start, end) in enumerate(batch_spans):
            doc = docs[i]
            n = end - start
            input_ids[row, 0] = cls_id
            input_ids[row, 1 : n + 1] = doc.piece_ids[start:end]
            input_ids[row, n + 1] = sep_id
            attention_mask[row, : n + N_SPECIAL_TOKENS] = 1
            tokens = numpy.nonzero(
                (doc.first_piece >= start) & (doc.first_piece < end)
            )[0]
            rows.append(numpy.full(len(tokens), row, dtype="int64"))
            cols.append(doc.first_piece[tokens] - start + 1)
            targets.append(tokens + token_offsets[i])
        batch = WindowBatch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            rows=numpy.concatenate(rows).astype("int64"),
            cols=numpy.concatenate(cols).astype("int64"),
            targets=numpy.concatenate(targets).astype("int64"),
        )
        numpy.add.at(counts, batch.targets, 1)
        batches.append(batch)
    return WindowPlan(
        batches=batches, n_tokens=[doc.n_tokens for doc in docs], counts=counts
    )
