"""Hugging Face token classifiers in and out of spaCy: same logits, same entities, clear errors."""

from __future__ import annotations

import logging
import random
import shutil

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    BertForTokenClassification,
    pipeline,
)

from spacy_biobert.cli.main import main
from spacy_biobert.huggingface import (
    LabelSchemeError,
    export_pipeline,
    import_checkpoint,
    read_bio_labels,
)
from spacy_biobert.models.encoder import EncoderLoadError, load_tokenizer
from spacy_biobert.models.token_classifier import encode_docs

from conftest import build_tiny_encoder

# Deliberately not in the component's order (O first, then B-/I- by label).
CHECKPOINT_LABELS = ["B-Disease", "O", "I-Chemical", "I-Disease", "B-Chemical"]
TEXT = "patients with breast cancer, and huntington disease of the gene."


def write_checkpoint(encoder_folder, path, labels=CHECKPOINT_LABELS):
    """Save a token classifier on the tiny encoder, its head random but far from uniform."""
    torch.manual_seed(1)
    model = BertForTokenClassification.from_pretrained(
        encoder_folder,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
    model.save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(encoder_folder).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tiny_encoder, tmp_path_factory):
    return write_checkpoint(tiny_encoder, tmp_path_factory.mktemp("hf_checkpoint"))


def hf_first_piece_logits(folder, words):
    """The checkpoint's logits at each word's first word piece, by label name."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits[0].numpy()
    rows, seen = [], set()
    for position, word in enumerate(encoded.word_ids()):
        if word is not None and word not in seen:
            seen.add(word)
            rows.append(logits[position])
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return numpy.stack(rows), labels


def spacy_logits(nlp, text):
    ner = nlp.get_pipe("ner")
    doc = nlp.make_doc(text)
    scores = ner.predict([doc])
    return [token.text for token in doc], scores.logits[0], ner.tags


def assert_same_logits(nlp, folder, text):
    words, ours, our_tags = spacy_logits(nlp, text)
    theirs, their_labels = hf_first_piece_logits(folder, words)
    order = [their_labels.index(tag) for tag in our_tags]
    difference = numpy.abs(ours - theirs[:, order]).max()
    assert difference < 1e-5, difference
    return difference


def test_import_keeps_the_heads_logits(checkpoint):
    nlp = import_checkpoint(checkpoint)
    assert nlp.get_pipe("ner").labels == ["Chemical", "Disease"]
    assert_same_logits(nlp, checkpoint, TEXT)


def test_imported_entities_match_the_transformers_pipeline(checkpoint):
    nlp = import_checkpoint(checkpoint, model_config={"context": "document"})
    nlp.get_pipe("ner").decoding = "argmax"  # the transformers pipeline's own rule
    tagger = pipeline(
        "token-classification",
        model=str(checkpoint),
        aggregation_strategy="first",
        device=-1,
    )
    theirs = {(e["start"], e["end"], e["entity_group"]) for e in tagger(TEXT)}
    ours = {(e.start_char, e.end_char, e.label_) for e in nlp(TEXT).ents}
    assert theirs  # the random head must predict something for the test to mean anything
    assert ours == theirs


def test_imported_pipeline_saves_and_loads(checkpoint, tmp_path):
    nlp = import_checkpoint(checkpoint)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert_same_logits(loaded, checkpoint, TEXT)


def test_untyped_head_takes_the_entity_type(tiny_encoder, tmp_path):
    folder = write_checkpoint(tiny_encoder, tmp_path / "untyped", labels=["O", "B", "I"])
    with pytest.raises(LabelSchemeError, match="--entity-type"):
        import_checkpoint(folder)
    nlp = import_checkpoint(folder, entity_type="Disease")
    assert nlp.get_pipe("ner").tags == ["O", "B-Disease", "I-Disease"]
    words, ours, _ = spacy_logits(nlp, TEXT)
    theirs, labels = hf_first_piece_logits(folder, words)
    assert labels == ["O", "B", "I"]
    assert numpy.abs(ours - theirs).max() < 1e-5


@pytest.mark.parametrize(
    "labels, message",
    [
        (["O", "B-Gene", "I-Gene", "E-Gene", "S-Gene"], "BIOES or BILOU"),
        (["O", "B-Gene", "I-Gene", "L-Gene", "U-Gene"], "BIOES or BILOU"),
        (["LABEL_0", "LABEL_1", "LABEL_2"], "LABEL_0"),
        (["O", "B-Gene"], r"lacks the rows \['I-Gene'\]"),
        (["B-Gene", "I-Gene"], "no 'O' label"),
    ],
)
def test_label_schemes_that_cannot_be_kept_are_rejected(labels, message):
    with pytest.raises(LabelSchemeError, match=message):
        read_bio_labels(dict(enumerate(labels)), source="ckpt")


def test_bio_rows_are_found_by_name():
    labels, rows = read_bio_labels(dict(enumerate(CHECKPOINT_LABELS)))
    assert labels == ["Chemical", "Disease"]
    assert rows == {"B-Disease": 0, "O": 1, "I-Chemical": 2, "I-Disease": 3, "B-Chemical": 4}


def trained_pipeline(encoder):
    random.seed(0)
    torch.manual_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_ner", name="ner", config={"model": {"encoder": str(encoder)}})
    examples = [
        Example.from_dict(nlp.make_doc("breast cancer in patients"), {"entities": [(0, 13, "Disease")]}),
        Example.from_dict(nlp.make_doc("the gene of huntington disease"), {"entities": [(12, 30, "Disease")]}),
    ]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    return nlp


def test_export_loads_in_transformers_with_the_same_logits(tiny_encoder, tmp_path):
    nlp = trained_pipeline(tiny_encoder)
    folder = export_pipeline(nlp, tmp_path / "exported")
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    assert_same_logits(nlp, folder, TEXT)


def test_export_then_import_gives_the_same_entities(tiny_encoder, tmp_path):
    nlp = trained_pipeline(tiny_encoder)
    export_pipeline(nlp, tmp_path / "exported")
    again = import_checkpoint(tmp_path / "exported")
    assert [e.text for e in again(TEXT).ents] == [e.text for e in nlp(TEXT).ents]
    assert_same_logits(again, tmp_path / "exported", TEXT)


def test_export_of_two_components_needs_name(tiny_encoder, tmp_path):
    nlp = trained_pipeline(tiny_encoder)
    nlp.add_pipe("biobert_ner", name="ner2", config={"model": {"encoder": str(tiny_encoder)}})
    with pytest.raises(ValueError, match="--component"):
        export_pipeline(nlp, tmp_path / "out")
    with pytest.raises(ValueError, match="no biobert_ner component named 'tagger'"):
        export_pipeline(nlp, tmp_path / "out", component="tagger")
    assert export_pipeline(nlp, tmp_path / "out", component="ner").is_dir()


def test_pickled_weights_are_rejected_unless_trusted(checkpoint, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(checkpoint, folder)
    model = AutoModelForTokenClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    model.save_pretrained(folder, safe_serialization=False)
    assert (folder / "pytorch_model.bin").is_file()
    with pytest.raises(EncoderLoadError, match="allow-pickle") as error:
        import_checkpoint(folder)
    assert "trust" in str(error.value)
    nlp = import_checkpoint(folder, allow_pickle=True)
    assert_same_logits(nlp, checkpoint, TEXT)
    # The pipeline keeps the weights as safetensors, so it needs no pickle later.
    assert nlp.get_pipe("ner").model.attrs["allow_pickle"] is False


def test_missing_checkpoint_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Checkpoint folder not found"):
        import_checkpoint(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        import_checkpoint(tmp_path / "empty")


def test_truncated_weights_name_the_checkpoint(checkpoint, tmp_path):
    folder = tmp_path / "truncated"
    shutil.copytree(checkpoint, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(EncoderLoadError, match="truncated") as error:
        import_checkpoint(folder)
    assert str(weights) in str(error.value)
    assert "pickle" not in str(error.value)


def test_head_config_mismatch_is_rejected(checkpoint, tmp_path):
    folder = tmp_path / "mismatch"
    shutil.copytree(checkpoint, folder)
    config = BertConfig.from_pretrained(folder)
    config.id2label = {0: "O", 1: "B-Disease", 2: "I-Disease"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.save_pretrained(folder)
    with pytest.raises(EncoderLoadError, match="may not match the labels in config.json"):
        import_checkpoint(folder)


def test_tokenizer_of_another_encoder_is_rejected(checkpoint, tmp_path):
    folder = tmp_path / "other_tokenizer"
    shutil.copytree(checkpoint, folder)
    other = build_tiny_encoder(tmp_path / "bigger", extra_words=[f"word{i}" for i in range(50)])
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(other / name, folder / name)
    with pytest.raises(EncoderLoadError, match="belong to another encoder"):
        import_checkpoint(folder)


@pytest.fixture(scope="module")
def cased_encoder(tmp_path_factory):
    return build_tiny_encoder(
        tmp_path_factory.mktemp("cased_bert"), cased=True, extra_words=["BRCA", "Na"]
    )


def test_cased_encoder_sees_case(cased_encoder, caplog):
    with caplog.at_level(logging.WARNING):
        tokenizer = load_tokenizer(cased_encoder, {})
    assert not caplog.records
    doc = spacy.blank("en")("BRCA1 and Na+")
    (encoded,) = encode_docs(tokenizer, [doc])
    pieces = tokenizer.convert_ids_to_tokens(encoded.piece_ids.tolist())
    assert pieces == ["BRCA", "##1", "and", "Na", "+"]


def test_lowercasing_a_cased_vocabulary_warns(cased_encoder, tmp_path, caplog):
    folder = tmp_path / "no_tokenizer_config"
    shutil.copytree(cased_encoder, folder)
    # Without these two files the tokenizer falls back to lower-casing, the way a
    # cased BioBERT checkpoint shipped with vocab.txt only does.
    (folder / "tokenizer_config.json").unlink()
    (folder / "tokenizer.json").unlink()
    with caplog.at_level(logging.WARNING):
        tokenizer = load_tokenizer(folder, {})
    assert tokenizer("BRCA1", add_special_tokens=False).tokens() != ["BRCA", "##1"]
    assert "do_lower_case" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tokenizer = load_tokenizer(folder, {"do_lower_case": False})
    assert not caplog.records
    assert tokenizer("BRCA1", add_special_tokens=False).tokens() == ["BRCA", "##1"]


def test_command_line_round_trip(checkpoint, tmp_path, capsys):
    assert main(["import-hf", str(checkpoint), str(tmp_path / "pipeline"), "--decoding", "argmax"]) == 0
    assert "Chemical, Disease" in capsys.readouterr().out
    assert spacy.load(tmp_path / "pipeline").get_pipe("ner").decoding == "argmax"
    assert main(["export-hf", str(tmp_path / "pipeline"), str(tmp_path / "hf")]) == 0
    assert_same_logits(spacy.load(tmp_path / "pipeline"), tmp_path / "hf", TEXT)
    # An existing folder is never written over.
    assert main(["export-hf", str(tmp_path / "pipeline"), str(tmp_path / "hf")]) == 1
    assert "already exists" in capsys.readouterr().err
