"""The scoring helpers of benchmarks/accuracy.py, which the accuracy table relies on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.accuracy import (  # noqa: E402
    _decodings,
    main,
    parse_system,
    prf,
    score_sentences,
    score_span_sets,
    tag_set,
)


def test_prf_counts():
    assert prf(3, 4, 6) == pytest.approx({"p": 0.75, "r": 0.5, "f": 0.6})
    assert prf(0, 0, 5) == {"p": 0.0, "r": 0.0, "f": 0.0}


def test_span_sets_score_per_type():
    gold = [[(0, 5, "Chemical"), (10, 20, "Disease")], [(3, 4, "Disease")]]
    predicted = [[(0, 5, "Chemical"), (10, 19, "Disease")], [(3, 4, "Disease"), (6, 8, "Chemical")]]
    scores = score_span_sets(gold, predicted)
    assert scores["all"] == pytest.approx(prf(2, 4, 3))
    assert scores["types"]["Chemical"] == pytest.approx(prf(1, 2, 1))
    assert scores["types"]["Disease"] == pytest.approx(prf(1, 2, 2))


def test_sentence_scores_follow_conlleval():
    gold = [["B-D", "I-D", "O"], ["O", "B-D", "O"]]
    # The second prediction starts with I-D after O: conlleval opens an entity there.
    predicted = [["B-D", "I-D", "O"], ["O", "I-D", "O"]]
    scores = score_sentences(gold, predicted)
    assert scores["all"]["f"] == 1.0
    assert scores["seqeval_default_f"] == 1.0
    assert scores["seqeval_strict_f"] == pytest.approx(2 / 3)


def test_tag_set_completes_pairs():
    sentences = [(["a", "b"], ["B-Chemical", "O"]), (["c"], ["I-Disease"])]
    assert tag_set(sentences) == ["B-Chemical", "B-Disease", "I-Chemical", "I-Disease", "O"]


def test_system_specs():
    assert parse_system("hf_trainer") == ("hf_trainer", {})
    assert parse_system("biobert_ner:decoding=argmax,label_smoothing=0.1,schedule=false") == (
        "biobert_ner",
        {"decoding": "argmax", "label_smoothing": 0.1, "schedule": False},
    )
    with pytest.raises(ValueError, match="Unknown system"):
        parse_system("flair")
    with pytest.raises(ValueError, match="only for biobert_ner"):
        parse_system("hf_trainer:decoding=argmax")


def test_score_pipeline_needs_an_existing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--score-pipeline", str(tmp_path / "absent")])
    assert "pipeline folder not found" in capsys.readouterr().err


def test_score_pipeline_reports_unreadable_input(tmp_path, capsys):
    (tmp_path / "not_a_pipeline").mkdir()
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--score-pipeline", str(tmp_path / "not_a_pipeline")])
    assert "cannot score" in capsys.readouterr().err


def test_crf_runs_score_head_only_decodings():
    assert _decodings(None) == [("argmax", False), ("strict", False), ("viterbi", False)]
    assert _decodings(object()) == [("viterbi", False), ("viterbi", True), ("argmax", True)]
