"""The config reader spacy_biobert.Corpus.v1 on every supported corpus format."""

from __future__ import annotations

import pytest
import spacy

from spacy_biobert.readers.corpus import DocumentCorpus, IobCorpus, create_corpus_reader, detect_format

PUBTATOR = (
    "123|t|Breast cancer in BRCA1 carriers.\n"
    "123|a|Aspirin reduced the risk.\n"
    "123\t0\t13\tBreast cancer\tSpecificDisease\tD001943\n"
    "123\t33\t40\tAspirin\tChemical\tD001241\n"
    "\n"
)


@pytest.fixture
def nlp():
    return spacy.blank(
        "en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}
    )


def test_pubtator_txt_is_detected(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    assert detect_format(path) == "pubtator"


def test_iob_txt_is_detected(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("Aspirin\tB-Chemical\n", encoding="utf-8")
    assert detect_format(path) == "iob"
    assert isinstance(create_corpus_reader(path), IobCorpus)


def test_pubtator_examples_keep_offsets_and_ids(tmp_path, nlp):
    path = tmp_path / "corpus.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    reader = create_corpus_reader(path)
    assert isinstance(reader, DocumentCorpus)
    (example,) = list(reader(nlp))
    ents = [(e.start_char, e.end_char, e.label_, e.kb_id_) for e in example.reference.ents]
    assert ents == [(0, 13, "SpecificDisease", "D001943"), (33, 40, "Chemical", "D001241")]
    assert example.predicted.text == example.reference.text


def test_entity_type_replaces_mention_types(tmp_path, nlp):
    path = tmp_path / "corpus.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    (example,) = list(create_corpus_reader(path, entity_type="Entity")(nlp))
    assert [e.label_ for e in example.reference.ents] == ["Entity", "Entity"]


def test_brat_folder_is_detected(tmp_path, nlp):
    (tmp_path / "doc1.txt").write_text("Aspirin helps.", encoding="utf-8")
    (tmp_path / "doc1.ann").write_text("T1\tChemical 0 7\tAspirin\n", encoding="utf-8")
    assert detect_format(tmp_path) == "brat"
    (example,) = list(create_corpus_reader(tmp_path)(nlp))
    assert [(e.text, e.label_) for e in example.reference.ents] == [("Aspirin", "Chemical")]


def test_invalid_format_is_rejected(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    with pytest.raises(ValueError, match="Invalid corpus format 'csv'"):
        create_corpus_reader(path, format="csv")


def test_missing_path_names_the_settings():
    with pytest.raises(ValueError, match="paths.train or paths.dev is null"):
        create_corpus_reader(None)


@pytest.mark.integration
def test_bc5cdr_pubtator_examples(shared_data, nlp):
    path = shared_data / "bc5cdr" / "pubtator" / "CDR_TestSet.PubTator.txt"
    examples = list(create_corpus_reader(path)(nlp))
    assert len(examples) == 500
    labels = {e.label_ for example in examples for e in example.reference.ents}
    assert labels == {"Chemical", "Disease"}


def test_convert_pubtator_keeps_concept_ids(tmp_path):
    from spacy.tokens import DocBin

    from spacy_biobert.cli.main import main as cli_main

    source = tmp_path / "corpus.txt"
    source.write_text(PUBTATOR, encoding="utf-8")
    output = tmp_path / "corpus.spacy"
    assert cli_main(["convert", str(source), str(output)]) == 0
    (doc,) = DocBin().from_disk(output).get_docs(spacy.blank("en").vocab)
    assert [(e.text, e.kb_id_) for e in doc.ents] == [
        ("Breast cancer", "D001943"), ("Aspirin", "D001241"),
    ]
    assert len(doc.spans["mentions"]) == 2
    assert doc._.biobert_doc_id == "123"


def test_defects_are_logged_in_the_first_pass_only(tmp_path, nlp, caplog):
    # spacy train reads the corpus again every epoch; the warnings should not repeat.
    path = tmp_path / "corpus.txt"
    path.write_text(PUBTATOR.replace("Breast cancer\tSpecific", "Breast cance\tSpecific"), encoding="utf-8")
    reader = create_corpus_reader(path)
    with caplog.at_level("WARNING"):
        first = list(reader(nlp))
        second = list(reader(nlp))
    mismatch = [r for r in caplog.records if "differs from the text" in r.getMessage()]
    assert len(mismatch) == 1
    assert "line 3" in mismatch[0].getMessage()
    assert len(first) == len(second) == 1


def test_convert_prints_what_became_of_the_mentions(tmp_path, capsys):
    from spacy_biobert.cli.main import main as cli_main

    nested = PUBTATOR.replace(
        "123\t33\t40", "123\t0\t6\tBreast\tBodyPart\t-\n123\t33\t40"
    )
    source = tmp_path / "corpus.txt"
    source.write_text(nested, encoding="utf-8")
    assert cli_main(["convert", str(source), str(tmp_path / "corpus.spacy")]) == 0
    printed = capsys.readouterr().out
    assert (
        "3 mentions in doc.spans['mentions']; 2 of them in doc.ents; 1 left out of "
        "doc.ents because they overlap; 0 widened to token boundaries; 1 warning about "
        "the data above."
    ) in printed


def test_convert_command_prints_the_defects(tmp_path):
    # Run as a user would, without logging configured: the counted warnings must be shown.
    import subprocess
    import sys

    source = tmp_path / "corpus.txt"
    source.write_text(PUBTATOR.replace("Breast cancer\tSpecific", "Breast cance\tSpecific"), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "convert", str(source), str(tmp_path / "out.spacy")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "line 3: field 4 (mention text): 'Breast cance' differs" in result.stderr
    assert "Wrote 1 doc to" in result.stdout
    assert "1 warning about the data above." in result.stdout
