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

    input_ids: shape (n_rows, row_len); each window in a row starts with
        [CLS] and ends with [SEP].
    attention_mask: shape (n_rows, row_len) with one window per row, or
        (n_rows, row_len, row_len) when rows are packed, where each piece attends to
        the pieces of its own window only, and padding attends to itself.
    position_ids: shape (n_rows, row_len), counting from 0 in each window;
        None with one window per row, where the encoder counts them itself.
    rows, cols: for each (token, window) occurrence, where the token's first
        piece sits in ``input_ids``; shape (n_occurrences,).
    targets: for each occurrence, the token's index among all tokens of the
        documents in the batch, counted document after document.
    """

    input_ids: numpy.ndarray
    attention_mask: numpy.ndarray
    position_ids: Optional[numpy.ndarray]
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


def pack_rows(lengths: Sequence[int], capacity: int) -> List[List[int]]:
    """Group items of the given lengths into rows of at most ``capacity``.

    Longest first, each into the fullest row that still has room (best fit
    decreasing), which leaves little room unused.  Returns the item indices
    of each row.
    """
    rows: List[List[int]] = []
    room: List[int] = []
    # rows_by_room[r]: the rows with r positions left.
    rows_by_room: List[List[int]] = [[] for _ in range(capacity + 1)]
    for item in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        n = lengths[item]
        for left in range(n, capacity + 1):
            if rows_by_room[left]:
                row = rows_by_room[left].pop()
                break
        else:
            row = len(rows)
            rows.append([])
            room.append(capacity)
        rows[row].append(item)
        room[row] -= n
        rows_by_room[room[row]].append(row)
    return rows


def plan_windows(
    docs: Sequence[EncodedDoc],
    *,
    window: int,
    stride: int,
    windows_per_batch: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    pack: bool = False,
) -> WindowPlan:
    """Cut documents into overlapping windows and group them into padded batches.

    Rows are sorted by length before batching, so that each batch needs
    little padding; the occurrence arrays put every score back in place.

    Args:
        window: the maximum window length in word pieces, special tokens included.
        stride: how many word pieces one window starts after the previous one.
        windows_per_batch: the maximum number of rows in one encoder call.
        pack: put several short windows, of any documents, into one row of
            ``window`` pieces, kept apart by the attention mask and position
            ids.  Short sentences then fill rows instead of padding.
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
    sizes = [end - start + N_SPECIAL_TOKENS for _, start, end in spans]
    if pack:
        rows = pack_rows(sizes, window)
    else:
        rows = [[k] for k in range(len(spans))]
    rows.sort(key=lambda row: sum(sizes[k] for k in row))

    batches = []
    for batch_start in range(0, len(rows), windows_per_batch):
        batch_rows = [
            [spans[k] for k in row] for row in rows[batch_start : batch_start + windows_per_batch]
        ]
        batch = _fill_batch(
            docs, batch_rows, token_offsets, cls_id=cls_id, sep_id=sep_id, pad_id=pad_id, pack=pack
        )
        numpy.add.at(counts, batch.targets, 1)
        batches.append(batch)
    return WindowPlan(
        batches=batches, n_tokens=[doc.n_tokens for doc in docs], counts=counts
    )


def _fill_batch(
    docs: Sequence[EncodedDoc],
    batch_rows: List[List[Tuple[int, int, int]]],
    token_offsets: numpy.ndarray,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    pack: bool,
) -> WindowBatch:
    row_len = max(
        sum(end - start + N_SPECIAL_TOKENS for _, start, end in row) for row in batch_rows
    )
    shape = (len(batch_rows), row_len)
    input_ids = numpy.full(shape, pad_id, dtype="int64")
    if pack:
        attention_mask = numpy.zeros(shape + (row_len,), dtype="int64")
        position_ids = numpy.zeros(shape, dtype="int64")
    else:
        attention_mask = numpy.zeros(shape, dtype="int64")
        position_ids = None
    rows, cols, targets = [], [], []
    for row, windows in enumerate(batch_rows):
        offset = 0
        for i, start, end in windows:
            doc = docs[i]
            n = end - start + N_SPECIAL_TOKENS
            input_ids[row, offset] = cls_id
            input_ids[row, offset + 1 : offset + n - 1] = doc.piece_ids[start:end]
            input_ids[row, offset + n - 1] = sep_id
            if pack:
                attention_mask[row, offset : offset + n, offset : offset + n] = 1
                position_ids[row, offset : offset + n] = numpy.arange(n)
            else:
                attention_mask[row, offset : offset + n] = 1
            tokens = numpy.nonzero((doc.first_piece >= start) & (doc.first_piece < end))[0]
            rows.append(numpy.full(len(tokens), row, dtype="int64"))
            cols.append(doc.first_piece[tokens] - start + 1 + offset)
            targets.append(tokens + token_offsets[i])
            offset += n
        if pack:
            # Padding attends to itself so that no query has an empty mask row,
            # which some attention kernels turn into NaN.
            padding = numpy.arange(offset, row_len)
            attention_mask[row, padding, padding] = 1
    return WindowBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        rows=numpy.concatenate(rows).astype("int64"),
        cols=numpy.concatenate(cols).astype("int64"),
        targets=numpy.concatenate(targets).astype("int64"),
    )
