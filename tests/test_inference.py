"""Prediction paths of biobert_ner on a tiny BERT: packed rows, int8, ONNX Runtime, worker processes."""

from __future__ import annotations

import sys

import numpy
import pytest
import spacy
from spacy.training import Example

from spacy_biobert.models.token_classifier import get_hf_model

TEXTS = [
    "patients with breast cancer. the gene was found in ovarian cancer.",
    "huntington disease is a disease of the gene",
    "",
    "mutations in the gene and breast cancer. a gene. of the disease with the patients and the gene.",
] + [f"the gene {i} was found in patients with cancer." for i in range(12)]


def make_nlp(encoder, **model_config):
    nlp = spacy.blank("en")
    config = {"encoder": str(encoder), "window": 32, "stride": 16, **model_config}
    nlp.add_pipe("biobert_ner", name="ner", config={"model": config})
    doc = nlp.make_doc("patients with breast cancer")
    example = Example.from_dict(doc, {"entities": [(14, 27, "Disease")]})
    nlp.initialize(lambda: [example])
    return nlp


def predict(nlp, **attrs):
    """Return the concatenated logits and hidden states for TEXTS with the model's attrs changed."""
    ner = nlp.get_pipe("ner")
    saved = {key: ner.model.attrs[key] for key in attrs}
    ner.model.attrs.update(attrs)
    ner.model.attrs["engine"] = None
    try:
        scores = ner.predict([nlp.make_doc(text) for text in TEXTS])
    finally:
        ner.model.attrs.update(saved)
        ner.model.attrs["engine"] = None
    return numpy.concatenate(scores.logits), numpy.concatenate(scores.hidden)


@pytest.fixture(scope="module")
def nlp(tiny_encoder):
    return make_nlp(tiny_encoder, context="sentence", windows_per_batch=3)


def test_packed_rows_match_single_windows(nlp):
    assert nlp.get_pipe("ner").model.attrs["packed"]
    packed_logits, packed_hidden = predict(nlp)
    logits, hidden = predict(nlp, packed=False)
    assert packed_logits.shape == (sum(len(nlp.make_doc(t)) for t in TEXTS), 3)
    numpy.testing.assert_allclose(packed_logits, logits, atol=1e-5)
    numpy.testing.assert_allclose(packed_hidden, hidden, atol=1e-5)


def test_int8_logits_stay_close_to_fp32(nlp):
    logits, _ = predict(nlp)
    int8_logits, int8_hidden = predict(nlp, quantize="int8")
    assert int8_logits.shape == logits.shape
    assert numpy.abs(int8_logits - logits).max() < 0.1 * numpy.abs(logits).max() + 0.05
    assert not numpy.isnan(int8_hidden).any()


@pytest.mark.parametrize("packed", [True, False])
def test_onnxruntime_matches_torch(nlp, packed):
    pytest.importorskip("onnxruntime")
    logits, hidden = predict(nlp, packed=packed)
    ort_logits, ort_hidden = predict(nlp, packed=packed, backend="onnxruntime")
    numpy.testing.assert_allclose(ort_logits, logits, atol=1e-4)
    numpy.testing.assert_allclose(ort_hidden, hidden, atol=1e-4)


def test_onnxruntime_int8_stays_close_to_fp32(nlp):
    pytest.importorskip("onnxruntime")
    logits, _ = predict(nlp)
    int8_logits, _ = predict(nlp, backend="onnxruntime", quantize="int8")
    assert numpy.abs(int8_logits - logits).max() < 0.1 * numpy.abs(logits).max() + 0.05


def test_engine_settings_survive_reload(tiny_encoder, tmp_path):
    nlp = make_nlp(tiny_encoder, quantize="int8")
    expected = [e.text for e in nlp(TEXTS[0]).ents]
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    attrs = reloaded.get_pipe("ner").model.attrs
    assert (attrs["backend"], attrs["quantize"], attrs["packed"]) == ("torch", "int8", True)
    assert [e.text for e in reloaded(TEXTS[0]).ents] == expected
    fp32 = spacy.load(
        tmp_path / "pipeline", config={"components.ner.model.quantize": None}
    )
    assert fp32.get_pipe("ner").model.attrs["quantize"] is None


def test_engine_is_rebuilt_after_an_update(tiny_encoder):
    nlp = make_nlp(tiny_encoder, quantize="int8")
    ner = nlp.get_pipe("ner")
    nlp("patients with breast cancer")
    assert ner.model.attrs["engine"] is not None
    doc = nlp.make_doc("patients with breast cancer")
    nlp.update([Example.from_dict(doc, {"entities": [(14, 27, "Disease")]})])
    assert ner.model.attrs["engine"] is None


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"backend": "tensorrt"}, "backend = 'tensorrt': expected one of torch, onnxruntime"),
        ({"quantize": "int4"}, "quantize = 'int4': expected null"),
    ],
)
def test_invalid_engine_settings_are_rejected(tiny_encoder, setting, message):
    nlp = spacy.blank("en")
    config = {"encoder": str(tiny_encoder), **setting}
    with pytest.raises(ValueError, match=message):
        nlp.add_pipe("biobert_ner", config={"model": config})


def test_missing_onnxruntime_says_what_to_install(nlp, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "spacy-biobert\[onnx\]"'):
        predict(nlp, backend="onnxruntime")


def test_two_worker_processes_give_the_same_entities(nlp):
    get_hf_model(nlp.get_pipe("ner").model)
    # Run torch's parallel code in this process first, because a worker forked
    # after that hangs unless it switches to one thread.
    nlp(TEXTS[0])
    expected = [[(e.start_char, e.end_char) for e in doc.ents] for doc in nlp.pipe(TEXTS)]
    found = [
        [(e.start_char, e.end_char) for e in doc.ents]
        for doc in nlp.pipe(TEXTS, n_process=2, batch_size=4)
    ]
    assert found == expected
