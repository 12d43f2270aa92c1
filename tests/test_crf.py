"""The CRF's loss against brute force over all tag sequences, and the crf option of biobert_ner."""

from __future__ import annotations

import itertools
import logging
import math

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_biobert.crf import TransitionScores, crf_loss
from spacy_biobert.huggingface import export_pipeline
from spacy_biobert.models.token_classifier import get_hf_model
from spacy_biobert.pipeline.ner import CRF_LEARN_RATE_SCALE
from spacy_biobert.tags import allowed_transitions, best_valid_tags

from test_ner_component import (
    TRAIN_DATA,
    RecordingOptimizer,
    entity_tuples,
    make_examples,
    make_nlp,
    overfit,
    record_update,
)

TAGS = ["O", "B-C", "I-C", "B-D", "I-D"]


def random_case(n_tokens, seed):
    rng = numpy.random.default_rng(seed)
    emissions = rng.normal(size=(n_tokens, len(TAGS))).astype("float32")
    learned = TransitionScores(
        rng.normal(size=len(TAGS)).astype("float32"),
        rng.normal(size=(len(TAGS), len(TAGS))).astype("float32"),
        rng.normal(size=len(TAGS)).astype("float32"),
    )
    return emissions, learned


def valid_sequences(n_tokens):
    start, follows = allowed_transitions(TAGS)
    for path in itertools.product(range(len(TAGS)), repeat=n_tokens):
        if start[path[0]] and all(follows[a, b] for a, b in zip(path, path[1:])):
            yield path


def score(emissions, path, learned):
    total = learned.opening[path[0]] + learned.closing[path[-1]]
    total += sum(emissions[t, tag] for t, tag in enumerate(path))
    total += sum(learned.transition[a, b] for a, b in zip(path, path[1:]))
    return float(total)


def log_sum(values):
    peak = max(values)
    return peak + math.log(sum(math.exp(v - peak) for v in values))


def brute_force_loss(emissions, gold, learned):
    paths = list(valid_sequences(len(gold)))
    log_z = log_sum([score(emissions, p, learned) for p in paths])
    matching = [p for p in paths if all(g < 0 or g == t for g, t in zip(gold, p))]
    return log_z - log_sum([score(emissions, p, learned) for p in matching])


def test_loss_equals_brute_force_likelihood():
    emissions, learned = random_case(4, seed=0)
    gold = numpy.array([1, 2, 0, 3])
    loss, _, _ = crf_loss(emissions, gold, [True] * 4, TAGS, learned)
    assert loss == pytest.approx(brute_force_loss(emissions, gold, learned), rel=1e-6)
    assert loss > 0


def test_unknown_gold_tags_count_as_any_tag():
    emissions, learned = random_case(4, seed=1)
    gold = numpy.array([1, -1, -1, 0])
    loss, _, _ = crf_loss(emissions, gold, [True] * 4, TAGS, learned)
    assert loss == pytest.approx(brute_force_loss(emissions, gold, learned), rel=1e-6)


def test_gradients_match_finite_differences():
    emissions, learned = random_case(5, seed=2)
    gold = numpy.array([0, 3, 4, 0, 1])
    _, d_emissions, d_learned = crf_loss(emissions, gold, [True] * 5, TAGS, learned)
    epsilon = 1e-2

    def numeric(array, index):
        array[index] += epsilon
        up = brute_force_loss(emissions, gold, learned)
        array[index] -= 2 * epsilon
        down = brute_force_loss(emissions, gold, learned)
        array[index] += epsilon
        return (up - down) / (2 * epsilon)

    for index in [(0, 0), (1, 3), (2, 4), (4, 2)]:
        assert d_emissions[index] == pytest.approx(numeric(emissions, index), abs=1e-3)
    for name, index in [("opening", (3,)), ("transition", (3, 4)), ("transition", (0, 1)), ("closing", (1,))]:
        analytic = getattr(d_learned, name)[index]
        assert analytic == pytest.approx(numeric(getattr(learned, name), index), abs=1e-3)


def test_tokens_without_pieces_split_the_sequence():
    emissions, learned = random_case(5, seed=3)
    gold = numpy.array([1, 2, 0, 3, 0])
    has_piece = [True, True, False, True, True]
    loss, d_emissions, _ = crf_loss(emissions, gold, has_piece, TAGS, learned)
    expected = brute_force_loss(emissions[:2], gold[:2], learned) + brute_force_loss(
        emissions[3:], gold[3:], learned
    )
    assert loss == pytest.approx(expected, rel=1e-6)
    assert not d_emissions[2].any()


def test_entity_cut_by_run_start_trains_as_opening():
    # "breast  cancer": the whitespace token has no pieces, so "cancer" opens
    # a run with gold I-C, which it learns as B-C.
    emissions, learned = random_case(4, seed=4)
    gold = numpy.array([1, 2, 2, 0])
    loss, d_emissions, _ = crf_loss(emissions, gold, [True, False, True, True], TAGS, learned)
    expected = brute_force_loss(emissions[:1], gold[:1], learned) + brute_force_loss(
        emissions[2:], numpy.array([1, 0]), learned
    )
    assert loss == pytest.approx(expected, rel=1e-6)
    assert d_emissions[2].any()
    assert d_emissions[3].any()


def test_decoding_finds_best_valid_sequence():
    for seed in range(5):
        emissions, learned = random_case(4, seed=10 + seed)
        best = max(valid_sequences(4), key=lambda p: score(emissions, p, learned))
        found = best_valid_tags(emissions, TAGS, [True] * 4, learned.as_tuple())
        assert found == [TAGS[t] for t in best]


# The component


@pytest.fixture(scope="module")
def trained_crf(tiny_encoder):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "biobert_ner",
        name="ner",
        config={"crf": True, "model": {"encoder": str(tiny_encoder), "window": 32, "stride": 16}},
    )
    return nlp, overfit(nlp)


def test_crf_training_learns_spans_and_transitions(trained_crf):
    nlp, losses = trained_crf
    assert losses["ner"] < 0.1
    for text, entities in TRAIN_DATA:
        assert entity_tuples(nlp(text)) == entities
    ner = nlp.get_pipe("ner")
    b, i = ner.tags.index("B-Disease"), ner.tags.index("I-Disease")
    # Every gold I-Disease follows B- or I-Disease, so those pairs gain.
    assert ner.transitions.transition[b, i] > 0.1
    assert ner.transitions.transition[ner.tags.index("O"), b] != 0.0


def test_crf_scores_survive_saving(trained_crf, tmp_path):
    nlp, _ = trained_crf
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "ner" / "crf.safetensors").is_file()
    reloaded = spacy.load(tmp_path / "pipeline")
    saved, loaded = nlp.get_pipe("ner").transitions, reloaded.get_pipe("ner").transitions
    for name, array in saved.arrays().items():
        numpy.testing.assert_array_equal(loaded.arrays()[name], array)
    for text, entities in TRAIN_DATA:
        assert entity_tuples(reloaded(text)) == entities
    config = {k: v for k, v in nlp.get_pipe_config("ner").items() if k != "factory"}
    from_bytes = spacy.blank("en")
    from_bytes.add_pipe("biobert_ner", name="ner", config=config)
    from_bytes.get_pipe("ner").from_bytes(nlp.get_pipe("ner").to_bytes())
    assert entity_tuples(from_bytes(TRAIN_DATA[0][0])) == TRAIN_DATA[0][1]


def test_missing_or_corrupt_scores_name_file(trained_crf, tmp_path):
    nlp, _ = trained_crf
    nlp.to_disk(tmp_path / "pipeline")
    crf_file = tmp_path / "pipeline" / "ner" / "crf.safetensors"
    crf_file.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="(?s)crf.safetensors.*corrupt"):
        spacy.load(tmp_path / "pipeline")
    crf_file.unlink()
    with pytest.raises(FileNotFoundError, match="crf.safetensors is missing.*crf = false"):
        spacy.load(tmp_path / "pipeline")
    # Without the CRF the same weights still load and tag.
    without = spacy.load(tmp_path / "pipeline", config={"components": {"ner": {"crf": False}}})
    assert without.get_pipe("ner").transitions is None
    assert len(without(TRAIN_DATA[0][0])) > 0


def test_scores_ignored_with_crf_off_warns(trained_crf, tmp_path, caplog):
    nlp, _ = trained_crf
    nlp.to_disk(tmp_path / "pipeline")
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.pipeline.ner"):
        spacy.load(tmp_path / "pipeline", config={"components": {"ner": {"crf": False}}})
    assert "saved with CRF transition scores" in caplog.text


def test_transitions_learn_at_higher_rate(tiny_encoder):
    optimizer = record_update(tiny_encoder, crf=True)
    assert set(optimizer.gradients) >= {"crf.opening", "crf.transition", "crf.closing"}
    assert optimizer.lr_scales["crf.transition"] == CRF_LEARN_RATE_SCALE
    assert numpy.abs(optimizer.gradients["crf.transition"]).sum() > 0
    encoder_scales = {v for k, v in optimizer.lr_scales.items() if not k.startswith("crf.")}
    assert encoder_scales == {1.0}


def test_export_of_crf_pipeline_needs_drop_crf(trained_crf, tmp_path, caplog):
    nlp, _ = trained_crf
    with pytest.raises(ValueError, match="(?s)crf = true.*--drop-crf"):
        export_pipeline(nlp, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.huggingface"):
        export_pipeline(nlp, tmp_path / "hf", drop_crf=True)
    assert "without its CRF transition scores" in caplog.text
    assert (tmp_path / "hf" / "model.safetensors").is_file()


def test_label_smoothing_with_crf_is_rejected(tiny_encoder):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="label_smoothing = 0.1.*crf = false"):
        nlp.add_pipe(
            "biobert_ner",
            config={"crf": True, "label_smoothing": 0.1, "model": {"encoder": str(tiny_encoder)}},
        )


def test_crf_without_viterbi_is_rejected(tiny_encoder):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="decoding = 'argmax' with crf = true"):
        nlp.add_pipe(
            "biobert_ner",
            config={"crf": True, "decoding": "argmax", "model": {"encoder": str(tiny_encoder)}},
        )


def crf_pipeline(tiny_encoder, **model_config):
    torch.manual_seed(0)
    nlp = make_nlp(tiny_encoder, **model_config)
    ner = nlp.get_pipe("ner")
    ner.crf = True
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    # Dropout off, so that repeated forward passes give the same scores.
    for module in get_hf_model(ner.model).modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    get_hf_model(ner.model).config.attention_probs_dropout_prob = 0.0
    return nlp, ner, examples


def test_get_loss_leaves_no_gradient_behind(tiny_encoder):
    nlp, ner, examples = crf_pipeline(tiny_encoder)
    scores = ner.predict([eg.predicted for eg in examples])
    loss, _ = ner.get_loss(examples, scores)
    assert loss > 0
    assert ner._d_transitions is None


def test_accumulated_updates_add_transition_gradients(tiny_encoder):
    nlp, ner, examples = crf_pipeline(tiny_encoder)
    parts = []
    for batch in (examples[:2], examples[2:]):
        scores = ner.predict([eg.predicted for eg in batch])
        parts.append(ner._loss_and_gradients(batch, scores)[2])
        ner.update(batch, sgd=None)
    expected = parts[0].transition + parts[1].transition
    numpy.testing.assert_allclose(ner._d_transitions.transition, expected, atol=1e-4)
    optimizer = RecordingOptimizer()
    ner.finish_update(optimizer)
    numpy.testing.assert_allclose(optimizer.gradients["crf.transition"], expected, atol=1e-4)
    assert ner._d_transitions is None


def test_sentence_context_scores_each_sentence_alone(tiny_encoder):
    nlp, ner, _ = crf_pipeline(tiny_encoder, context="sentence")
    doc = nlp.make_doc("Patients with breast cancer. Huntington disease is a disease.")
    example = Example.from_dict(doc, {"entities": [(14, 27, "Disease"), (29, 47, "Disease")]})
    scores = ner.predict([example.predicted])
    assert scores.sentences == [[(0, 5), (5, len(doc))]]
    loss, _ = ner.get_loss([example], scores)
    gold = numpy.array([ner.tags.index(t) for t in ["O", "O", "B-Disease", "I-Disease", "O"]
                        + ["B-Disease", "I-Disease", "O", "O", "O", "O"]])
    logits = scores.logits[0]
    expected = sum(
        crf_loss(logits[a:b], gold[a:b], [True] * (b - a), ner.tags, ner.transitions)[0]
        for a, b in [(0, 5), (5, len(doc))]
    )
    assert loss == pytest.approx(expected / len(doc), rel=1e-5)
