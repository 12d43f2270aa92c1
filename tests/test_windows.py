import numpy
import pytest

from spacy_biobert.models.windows import EncodedDoc, pack_rows, plan_windows, window_starts


@pytest.mark.parametrize("n_pieces", [1, 5, 6, 7, 100, 1001])
def test_window_starts_cover_every_piece(n_pieces):
    length, stride = 6, 4
    starts = window_starts(n_pieces, length, stride)
    covered = numpy.zeros(n_pieces, dtype=bool)
    for start in starts:
        assert start >= 0
        assert start + min(length, n_pieces) <= n_pieces
        covered[start : start + length] = True
    assert covered.all()


def test_plan_reads_every_token_once_per_covering_window():
    # 3 documents: 10 tokens of 2 pieces each, an empty one, and 1 token of 1 piece.
    docs = [
        EncodedDoc(numpy.arange(100, 120), numpy.arange(0, 20, 2)),
        EncodedDoc(numpy.zeros(0, dtype="int64"), numpy.zeros(0, dtype="int64")),
        EncodedDoc(numpy.array([7]), numpy.array([0])),
    ]
    plan = plan_windows(
        docs, window=8, stride=4, windows_per_batch=2, cls_id=1, sep_id=2, pad_id=0
    )
    assert plan.n_tokens == [10, 0, 1]
    assert (plan.counts >= 1).all()
    for batch in plan.batches:
        assert batch.input_ids.shape[1] <= 8
        assert (batch.input_ids[:, 0] == 1).all()
        # Each occurrence points at the first piece of its token.
        for row, col, target in zip(batch.rows, batch.cols, batch.targets):
            if target < 10:
                assert batch.input_ids[row, col] == 100 + 2 * target
            else:
                assert batch.input_ids[row, col] == 7


def test_plan_marks_tokens_without_pieces():
    docs = [EncodedDoc(numpy.array([5, 6]), numpy.array([0, -1, 1]))]
    plan = plan_windows(
        docs, window=8, stride=4, windows_per_batch=4, cls_id=1, sep_id=2, pad_id=0
    )
    assert plan.counts.tolist() == [1, 0, 1]


def test_windows_stay_inside_segments():
    # 12 tokens of one piece each, in sentences of 5, 3 and 4 pieces.
    docs = [EncodedDoc(numpy.arange(100, 112), numpy.arange(12), segments=[(0, 5), (5, 8), (8, 12)])]
    plan = plan_windows(
        docs, window=6, stride=2, windows_per_batch=10, cls_id=1, sep_id=2, pad_id=0
    )
    windows = []
    for batch in plan.batches:
        for row in range(len(batch.input_ids)):
            length = int(batch.attention_mask[row].sum()) - 2
            windows.append(tuple(batch.input_ids[row, 1 : length + 1] - 100))
    segment_of = [0] * 5 + [1] * 3 + [2] * 4
    for window in windows:
        assert len({segment_of[piece] for piece in window}) == 1
    # Sentence 1 (5 pieces) needs two windows of 4; the others fit in one.
    assert sorted(windows) == [(0, 1, 2, 3), (1, 2, 3, 4), (5, 6, 7), (8, 9, 10, 11)]
    assert plan.counts.tolist() == [1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]


def test_pack_rows_best_fit():
    assert pack_rows([7, 7, 7, 5, 5], 16) == [[0, 1], [2, 3], [4]]
    assert pack_rows([16, 1], 16) == [[0], [1]]
    assert pack_rows([], 16) == []


def test_packed_rows_keep_windows_apart():
    # Sentences of 5, 5, 5, 3 and 3 pieces: windows of 7, 7, 7, 5 and 5 with
    # [CLS] and [SEP], packed into rows of 16 as 7 + 7, 7 + 5 and 5.
    segments = [(0, 5), (5, 10), (10, 15), (15, 18), (18, 21)]
    docs = [EncodedDoc(numpy.arange(100, 121), numpy.arange(21), segments=segments)]
    settings = dict(window=16, stride=8, windows_per_batch=10, cls_id=1, sep_id=2, pad_id=0)
    packed = plan_windows(docs, pack=True, **settings)
    single = plan_windows(docs, pack=False, **settings)
    assert len(single.batches[0].input_ids) == 5
    (batch,) = packed.batches
    assert batch.input_ids.shape == (3, 14)
    assert batch.attention_mask.shape == (3, 14, 14)
    assert (packed.counts == single.counts).all()
    # Rows are sorted by length: the single window of 5 comes first.
    assert batch.input_ids[0].tolist() == [1, 118, 119, 120, 2] + [0] * 9
    assert batch.position_ids[2].tolist() == list(range(7)) * 2
    mask = batch.attention_mask[2]
    assert mask[:7, :7].all()
    assert mask[7:, 7:].all()
    assert not mask[:7, 7:].any()
    assert not mask[7:, :7].any()
    # Padding attends only to itself.
    assert (batch.attention_mask[0, 5:, 5:] == numpy.eye(9, dtype="int64")).all()
    # Each occurrence still points at its token's first piece.
    assert (batch.input_ids[batch.rows, batch.cols] == 100 + batch.targets).all()
