from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_biobert.cli.main import main as cli_main
from spacy_biobert.readers.corpus import create_corpus_reader
from spacy_biobert.readers.iob import CorpusFormatError, read_iob, read_iob_docs

UNTYPED = "Breast\tB\ncancer\tI\nrisk\tO\n\nHuntington\tB\ndisease\tI\n"
TYPED = "Aspirin\tB-Chemical\ncauses\tO\nulcers\tB-Disease\n"


def write(tmp_path: Path, text: str, name: str = "data.tsv", newline="\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_untyped_file_with_entity_type(tmp_path):
    sentences = list(read_iob(write(tmp_path, UNTYPED), entity_type="Disease"))
    assert [s.words for s in sentences] == [
        ["Breast", "cancer", "risk"], ["Huntington", "disease"],
    ]
    assert sentences[0].tags == ["B-Disease", "I-Disease", "O"]
    assert [s.line for s in sentences] == [1, 5]


def test_typed_file_keeps_types(tmp_path):
    nlp = spacy.blank("en")
    (doc,) = read_iob_docs(write(tmp_path, TYPED), nlp.vocab)
    assert doc.text == "Aspirin causes ulcers"
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Aspirin", "Chemical"), ("ulcers", "Disease"),
    ]


def test_crlf_and_byte_order_mark_accepted(tmp_path):
    path = write(tmp_path, "\ufeff" + TYPED, newline="\r\n")
    (sentence,) = read_iob(path)
    assert sentence.words == ["Aspirin", "causes", "ulcers"]
    assert sentence.tags == ["B-Chemical", "O", "B-Disease"]


def test_malformed_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "Aspirin\tB-Chemical\ncauses O\n")
    with pytest.raises(CorpusFormatError) as error:
        list(read_iob(path))
    message = str(error.value)
    assert str(path) in message
    assert "line 2" in message
    assert "token<TAB>tag" in message


def test_invalid_tag_is_rejected(tmp_path):
    path = write(tmp_path, "Aspirin\tB_Chemical\n")
    with pytest.raises(CorpusFormatError, match="line 1: invalid tag 'B_Chemical'"):
        list(read_iob(path))


def test_untyped_tag_needs_entity_type(tmp_path):
    with pytest.raises(CorpusFormatError, match="line 1: the tag 'B' has no entity type"):
        list(read_iob(write(tmp_path, UNTYPED)))


def test_empty_file_is_rejected(tmp_path):
    with pytest.raises(CorpusFormatError, match="no tokens found"):
        list(read_iob(write(tmp_path, "\n\n")))


def test_orphan_inside_tag_opens_entity(tmp_path, caplog):
    path = write(tmp_path, "high\tO\nfever\tI-Disease\n")
    nlp = spacy.blank("en")
    (doc,) = read_iob_docs(path, nlp.vocab)
    assert [(e.text, e.label_) for e in doc.ents] == [("fever", "Disease")]
    assert "1 I- tags follow O" in caplog.text


def test_corpus_reader_makes_examples(tmp_path):
    nlp = spacy.blank("en")
    reader = create_corpus_reader(write(tmp_path, UNTYPED), entity_type="Disease", limit=1)
    (example,) = list(reader(nlp))
    assert example.reference.text == "Breast cancer risk"
    assert [e.text for e in example.reference.ents] == ["Breast cancer"]


def test_corpus_reader_rejects_unknown_suffix(tmp_path):
    path = write(tmp_path, TYPED, name="data.csv")
    with pytest.raises(CorpusFormatError, match="unknown corpus format '.csv'"):
        create_corpus_reader(path)


def test_convert_command_writes_spacy_file(tmp_path):
    source = write(tmp_path, UNTYPED)
    output = tmp_path / "out" / "data.spacy"
    assert cli_main(["convert", str(source), str(output), "--entity-type", "Disease"]) == 0
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert [[e.text for e in d.ents] for d in docs] == [["Breast cancer"], ["Huntington disease"]]


def test_convert_failure_keeps_earlier_output(tmp_path, capsys):
    output = tmp_path / "data.spacy"
    output.write_bytes(b"earlier output")
    bad = write(tmp_path, "Aspirin\n", name="bad.tsv")
    assert cli_main(["convert", str(bad), str(output)]) == 1
    assert output.read_bytes() == b"earlier output"
    assert "bad.tsv, line 1" in capsys.readouterr().err


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("Aspirin\tO\nS\u00f6gren\tB-Disease\n".encode("latin-1"))
    with pytest.raises(CorpusFormatError, match=r"latin1.tsv, line 2: invalid UTF-8"):
        list(read_iob(path))


@pytest.mark.parametrize("line", ["\tO", "a \tB-X", "a b\tO"])
def test_token_with_whitespace_is_rejected(tmp_path, line):
    with pytest.raises(CorpusFormatError, match="line 1: invalid token"):
        list(read_iob(write(tmp_path, line + "\n")))


@pytest.mark.parametrize("entity_type", ["", "O", "Dis ease"])
def test_invalid_entity_type_is_rejected(tmp_path, entity_type):
    with pytest.raises(ValueError, match="Invalid entity type"):
        list(read_iob(write(tmp_path, UNTYPED), entity_type=entity_type))


def test_convert_requires_spacy_suffix(tmp_path, capsys):
    source = write(tmp_path, TYPED)
    assert cli_main(["convert", str(source), str(tmp_path / "out_file")]) == 1
    assert "expected a name ending in .spacy" in capsys.readouterr().err
    assert not (tmp_path / "out_file").exists()


def test_convert_never_overwrites_its_input(tmp_path, capsys):
    source = write(tmp_path, TYPED, name="data.spacy")
    before = source.read_bytes()
    assert cli_main(["convert", str(source), str(source)]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_convert_unwritable_output_names_it(tmp_path, capsys):
    source = write(tmp_path, TYPED)
    output = source / "data.spacy"  # a folder that is a file cannot be created
    assert cli_main(["convert", str(source), str(output)]) == 1
    message = capsys.readouterr().err
    assert f"Could not write {output}" in message
    assert ".tmp" not in message


def test_convert_output_uses_umask(tmp_path):
    import os

    output = tmp_path / "data.spacy"
    cli_main(["convert", str(write(tmp_path, TYPED)), str(output)])
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask
