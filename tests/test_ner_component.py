"""biobert_ner on a tiny randomly initialised BERT: training, decoding, windows, saving."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_biobert.models.token_classifier import encode_docs, get_hf_model

TRAIN_DATA = [
    ("patients with breast cancer and huntington disease", [(14, 27, "Disease"), (32, 50, "Disease")]),
    ("the gene was found in ovarian cancer", [(22, 36, "Disease")]),
    ("huntington disease is a disease of the gene", [(0, 18, "Disease")]),
    ("mutations in the gene and breast cancer", [(26, 39, "Disease")]),
]

FILLER = ["the", "of", "and", "in", "with", "patients", "was", "found", "a", "is", "gene"]


def make_nlp(encoder, **model_config):
    nlp = spacy.blank("en")
    config = {"encoder": str(encoder), "window": 32, "stride": 16, **model_config}
    nlp.add_pipe("biobert_ner", name="ner", config={"model": config})
    return nlp


def make_examples(nlp):
    return [
        Example.from_dict(nlp.make_doc(text), {"entities": entities})
        for text, entities in TRAIN_DATA
    ]


def entity_tuples(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def overfit(nlp):
    """Train ``nlp`` on TRAIN_DATA for 80 updates, enough to repeat it, and return the last losses."""
    random.seed(0)
    numpy.random.seed(0)
    torch.manual_seed(0)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.005
    losses = {}
    for _ in range(80):
        losses = nlp.update(examples, sgd=optimizer)
    return losses


@pytest.fixture(scope="module")
def trained(tiny_encoder, tmp_path_factory):
    """A tiny pipeline overfit on TRAIN_DATA (trained once for this module)."""
    nlp = make_nlp(tiny_encoder)
    return nlp, overfit(nlp)


def test_overfit_gives_exact_spans(trained, tmp_path):
    nlp, losses = trained
    assert losses["ner"] < 0.05
    for text, entities in TRAIN_DATA:
        assert entity_tuples(nlp(text)) == entities
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    for text, entities in TRAIN_DATA:
        assert entity_tuples(reloaded(text)) == entities


def test_saved_folder_is_safetensors_only(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    encoder_folder = tmp_path / "pipeline" / "ner" / "encoder"
    names = sorted(p.name for p in encoder_folder.iterdir())
    assert "model.safetensors" in names
    assert "config.json" in names
    assert "tokenizer.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    config = json.loads((encoder_folder / "config.json").read_text())
    assert config["id2label"] == {"0": "O", "1": "B-Disease", "2": "I-Disease"}


def test_saved_weights_follow_the_umask(trained, tmp_path):
    nlp, _ = trained
    old_umask = os.umask(0o022)
    try:
        nlp.to_disk(tmp_path / "pipeline")
    finally:
        os.umask(old_umask)
    weights = tmp_path / "pipeline" / "ner" / "encoder" / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == 0o644


def test_labels_collected_at_initialize(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    assert ner.labels == ["Disease"]
    assert ner.tags == ["O", "B-Disease", "I-Disease"]


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\n\n"])
def test_empty_and_whitespace_docs(trained, text):
    nlp, _ = trained
    doc = nlp(text)
    assert doc.text == text
    assert list(doc.ents) == []


def test_long_document_is_read_to_the_end(trained):
    nlp, _ = trained
    rng = random.Random(1)
    words = [rng.choice(FILLER) for _ in range(3000)]
    for position in (150, 2100, 2500, 2990):
        words[position : position + 2] = ["breast", "cancer"]
    text = " ".join(words)
    doc = nlp(text)
    found = {(e.start, e.end) for e in doc.ents}
    for position in (150, 2100, 2500, 2990):
        assert (position, position + 2) in found
    ner = nlp.get_pipe("ner")
    scores = ner.predict([doc])
    # Every token after word 2,000 was read by at least one window.
    assert scores.has_piece[0][2000:].all()
    assert (numpy.abs(scores.logits[0][2000:]).sum(axis=1) > 0).all()


def test_odd_unicode_keeps_text_and_offsets(trained):
    nlp, _ = trained
    text = (
        "TNF-\u03b1 and IL-1\u03b2 in Sj\u00f6gren syndrome \U0001F9EC with breast cancer\x07 "
        "and caf\u00e9\u0301 au lait \u200b spots\u00a0; huntington disease \u2013 \u00b5g"
    )
    doc = nlp(text)
    assert doc.text == text
    for ent in doc.ents:
        assert 0 <= ent.start_char < ent.end_char <= len(text)
        assert text[ent.start_char : ent.end_char] == ent.text
    # spaCy keeps the control character on the token "cancer\x07".
    assert ("breast cancer\x07", "Disease") in [(e.text, e.label_) for e in doc.ents]


def test_pipe_matches_single_docs(trained):
    nlp, _ = trained
    texts = [text for text, _ in TRAIN_DATA] + ["", "the gene " * 40 + "breast cancer"]
    single = [entity_tuples(nlp(text)) for text in texts]
    batched = [entity_tuples(doc) for doc in nlp.pipe(texts, batch_size=3)]
    assert batched == single


def test_hidden_states_are_the_encoders_last_layer(trained):
    nlp, _ = trained
    text = "patients with breast cancer"
    doc = nlp(text)
    ner = nlp.get_pipe("ner")
    hf_model = get_hf_model(ner.model)
    tokenizer = ner.model.attrs["tokenizer"]
    (encoded,) = encode_docs(tokenizer, [doc])
    input_ids = [tokenizer.cls_token_id] + encoded.piece_ids.tolist() + [tokenizer.sep_token_id]
    hf_model.eval()  # no dropout, as in prediction
    with torch.no_grad():
        output = hf_model.base_model(torch.tensor([input_ids]))
    expected = output.last_hidden_state[0, encoded.first_piece + 1].numpy()
    assert doc.tensor.shape == (len(doc), hf_model.config.hidden_size)
    numpy.testing.assert_allclose(doc.tensor, expected, atol=1e-5)


def test_hidden_state_shape_independent_of_batch(trained):
    nlp, _ = trained
    texts = ["   ", "patients with breast cancer", ""]
    alone = [nlp(text).tensor.shape for text in texts]
    batched = [doc.tensor.shape for doc in nlp.pipe(texts)]
    assert alone == batched == [(1, 32), (4, 32), (0, 32)]


def test_add_label_before_initialize_is_kept(tiny_encoder):
    nlp = make_nlp(tiny_encoder)
    ner = nlp.get_pipe("ner")
    ner.add_label("Gene")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    assert ner.labels == ["Disease", "Gene"]


def test_missing_encoder_setting_says_what_to_set():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="--paths.encoder"):
        nlp.add_pipe("biobert_ner", config={"model": {"encoder": None}})


def test_store_hidden_off_leaves_tensor_empty(tiny_encoder):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "biobert_ner",
        config={"model": {"encoder": str(tiny_encoder), "window": 32, "stride": 16}, "store_hidden": False},
    )
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    assert nlp("breast cancer").tensor.size == 0


def test_bad_config_value_fails_before_weights_load(tmp_path):
    nlp = spacy.blank("en")
    missing_encoder = tmp_path / "no_such_encoder"
    with pytest.raises(ValueError) as error:
        nlp.add_pipe(
            "biobert_ner",
            config={
                "model": {"encoder": str(missing_encoder), "window": 4, "windows_per_batch": 0}
            },
        )
    message = str(error.value)
    # Every invalid setting is listed at once.
    assert "window = 4: expected at least 8" in message
    assert "windows_per_batch = 0: expected at least 1" in message
    assert "no_such_encoder" not in message


def test_stride_longer_than_window_is_rejected(tiny_encoder):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="stride = 1000: expected 1 to window - 2 = 30"):
        nlp.add_pipe(
            "biobert_ner",
            config={"model": {"encoder": str(tiny_encoder), "window": 32, "stride": 1000}},
        )


def test_window_larger_than_encoder_is_rejected(tiny_encoder):
    nlp = make_nlp(tiny_encoder, window=600, stride=100)
    examples = make_examples(nlp)
    with pytest.raises(ValueError, match="window = 600 word pieces, but the encoder"):
        nlp.initialize(lambda: examples)


def test_missing_encoder_names_the_path(tmp_path):
    nlp = make_nlp(tmp_path / "no_such_encoder")
    examples = make_examples(nlp)
    with pytest.raises(OSError, match="no_such_encoder"):
        nlp.initialize(lambda: examples)


def test_truncated_weights_name_the_file(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    weights = tmp_path / "pipeline" / "ner" / "encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(OSError, match="model.safetensors"):
        spacy.load(tmp_path / "pipeline")


def test_unknown_gold_label_is_reported(trained):
    nlp, _ = trained
    example = Example.from_dict(
        nlp.make_doc("the gene was found"), {"entities": [(4, 8, "Gene")]}
    )
    with pytest.raises(ValueError, match="Unknown entity label 'Gene'"):
        nlp.update([example])


def run_fresh_python(code: str, env_extra=None) -> str:
    env = {**os.environ, **(env_extra or {})}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_factory_found_without_import(tiny_encoder):
    code = (
        "import spacy\n"
        "nlp = spacy.blank('en')\n"
        f"nlp.add_pipe('biobert_ner', config={{'model': {{'encoder': {str(tiny_encoder)!r}}}}})\n"
        "print(nlp.pipe_names)\n"
    )
    assert run_fresh_python(code).strip() == "['biobert_ner']"


def test_load_offline_without_import(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipeline")
    code = (
        "import spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        "doc = nlp('patients with breast cancer and huntington disease')\n"
        "print([(e.start_char, e.end_char, e.label_) for e in doc.ents])\n"
    )
    output = run_fresh_python(
        code, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf_home")}
    )
    assert output.strip() == "[(14, 27, 'Disease'), (32, 50, 'Disease')]"


def test_to_bytes_round_trip(trained):
    nlp, _ = trained
    data = nlp.to_bytes()
    copy = make_nlp("unused-encoder-name")
    copy.from_bytes(data)
    for text, entities in TRAIN_DATA:
        assert entity_tuples(copy(text)) == entities


@pytest.mark.parametrize("decoding", ["viterbi", "argmax", "strict"])
def test_every_decoding_gives_the_trained_spans(trained, decoding):
    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    assert ner.decoding == "viterbi"
    ner.decoding = decoding
    try:
        doc = nlp(TRAIN_DATA[0][0])
    finally:
        ner.decoding = "viterbi"
    assert entity_tuples(doc) == TRAIN_DATA[0][1]


@pytest.mark.parametrize(
    "setting",
    [
        {"decoding": "crf"},
        {"label_smoothing": 1.0},
        {"max_grad_norm": -1.0},
        {"head_learn_rate_factor": 0.0},
    ],
)
def test_invalid_decoding_settings_are_rejected(tiny_encoder, setting):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="Invalid"):
        nlp.add_pipe(
            "biobert_ner", config={"model": {"encoder": str(tiny_encoder)}, **setting}
        )


def test_label_smoothing_gradient_matches_loss(tiny_encoder):
    # A finite-difference check of d(loss)/d(logits) with smoothing on.
    nlp = make_nlp(tiny_encoder)
    ner = nlp.get_pipe("ner")
    ner.label_smoothing = 0.1
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    scores = ner.predict([eg.predicted for eg in examples])
    loss, d_logits = ner.get_loss(examples, scores)
    assert loss > 0
    logits = scores.logits[0]
    epsilon = 1e-3
    logits[1, 2] += epsilon
    loss_up, _ = ner.get_loss(examples, scores)
    logits[1, 2] -= 2 * epsilon
    loss_down, _ = ner.get_loss(examples, scores)
    numeric = (loss_up - loss_down) / (2 * epsilon)
    assert numeric == pytest.approx(float(d_logits[0][1, 2]), rel=1e-2, abs=1e-5)


class RecordingOptimizer:
    """Stands in for thinc's optimizer: keeps each gradient and leaves the weights alone."""

    def __init__(self):
        self.gradients = {}
        self.lr_scales = {}

    def __call__(self, key, weights, gradient, lr_scale=1.0):
        self.gradients[key[1]] = gradient.copy()
        self.lr_scales[key[1]] = lr_scale
        return weights, gradient


def record_update(tiny_encoder, **settings):
    torch.manual_seed(0)
    nlp = make_nlp(tiny_encoder)
    ner = nlp.get_pipe("ner")
    for name, value in settings.items():
        setattr(ner, name, value)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    # Dropout would make the two runs differ.
    for module in get_hf_model(ner.model).modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    optimizer = RecordingOptimizer()
    ner.update(examples, sgd=optimizer)
    return optimizer


def test_max_grad_norm_scales_all_weights_together(tiny_encoder):
    unclipped = record_update(tiny_encoder, max_grad_norm=0.0).gradients
    clipped = record_update(tiny_encoder, max_grad_norm=0.01).gradients
    norm = numpy.sqrt(sum(float((g**2).sum()) for g in unclipped.values()))
    assert norm > 0.01  # else the test would show nothing
    clipped_norm = numpy.sqrt(sum(float((g**2).sum()) for g in clipped.values()))
    assert clipped_norm == pytest.approx(0.01, rel=1e-3)
    # One factor for every tensor: the direction of the whole gradient is kept.
    for name, gradient in unclipped.items():
        numpy.testing.assert_allclose(clipped[name], gradient * (0.01 / norm), atol=1e-7)


def test_head_learn_rate_factor_scales_head_only(tiny_encoder):
    lr_scales = record_update(tiny_encoder, head_learn_rate_factor=10.0).lr_scales
    head = {name for name in lr_scales if ".classifier." in name}
    assert head == {"hf_model.classifier.weight", "hf_model.classifier.bias"}
    assert {lr_scales[name] for name in head} == {10.0}
    assert {lr_scales[name] for name in lr_scales if name not in head} == {1.0}


def test_sentence_context_reads_each_sentence_alone(trained):
    nlp, _ = trained
    model = nlp.get_pipe("ner").model
    first, second = "Patients with breast cancer.", "The gene was found in ovarian cancer."
    model.attrs["context"] = "sentence"
    try:
        together = nlp.get_pipe("ner").predict([nlp.make_doc(f"{first} {second}")])
        alone = nlp.get_pipe("ner").predict([nlp.make_doc(second)])
    finally:
        model.attrs["context"] = "document"
    n_first = len(nlp.make_doc(first))
    numpy.testing.assert_allclose(
        together.logits[0][n_first:], alone.logits[0], rtol=1e-4, atol=1e-5
    )


def test_document_context_crosses_sentences(trained):
    nlp, _ = trained
    first, second = "Patients with breast cancer.", "The gene was found in ovarian cancer."
    together = nlp.get_pipe("ner").predict([nlp.make_doc(f"{first} {second}")])
    alone = nlp.get_pipe("ner").predict([nlp.make_doc(second)])
    n_first = len(nlp.make_doc(first))
    assert not numpy.allclose(together.logits[0][n_first:], alone.logits[0], atol=1e-5)


def test_invalid_context_is_rejected():
    from spacy_biobert.models.token_classifier import build_token_classifier

    with pytest.raises(ValueError, match="context = 'paragraph'"):
        build_token_classifier("some/encoder", context="paragraph")


def test_sentence_context_ends_entities_at_sentence_ends(trained):
    # Force an I- tag at the first token of the second sentence: in sentence
    # context it opens a new entity instead of continuing the one before.
    from spacy_biobert.models.token_classifier import TokenScores
    from spacy_biobert.sentences import sentence_ranges

    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    doc = nlp.make_doc("Breast cancer. Cancer follows")
    tags = ner.tags
    logits = numpy.full((len(doc), len(tags)), -5.0, dtype="float32")
    for i, tag in enumerate(["B-Disease", "I-Disease", "I-Disease", "I-Disease", "O"]):
        logits[i, tags.index(tag)] = 5.0
    logits[3, tags.index("B-Disease")] = 4.0  # the best tag that may open an entity
    has_piece = [numpy.ones(len(doc), dtype=bool)]
    by_sentence = TokenScores([logits], has_piece, None, sentences=[sentence_ranges(doc)])
    assert by_sentence.sentences == [[(0, 3), (3, 5)]]
    ner.set_annotations([doc], by_sentence)
    assert [(e.start, e.end) for e in doc.ents] == [(0, 3), (3, 4)]
    ner.set_annotations([doc], TokenScores([logits], has_piece, None))
    assert [(e.start, e.end) for e in doc.ents] == [(0, 4)]
