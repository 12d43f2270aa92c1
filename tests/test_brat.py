"""The brat standoff reader: .txt/.ann pairs into AnnotatedDocuments."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import spacy

from spacy_biobert.readers.brat import read_brat
from spacy_biobert.readers.iob import CorpusFormatError
from spacy_biobert.readers.mentions import MENTION_SOURCES_EXTENSION, MENTIONS_KEY, to_doc

TEXT = "Breast cancer and BRCA1 gene mutations.\nOvarian tumours were rare.\n"
# Offsets into TEXT: "Breast cancer" 0-13, "BRCA1" 18-23, "gene" 24-28, "mutations" 29-38,
# "Ovarian" 40-47, "tumours" 48-55.
ANN = (
    "T1\tDisease 0 13\tBreast cancer\n"
    "T2\tGene 18 23\tBRCA1\n"
    "N1\tReference T1 MESH:D001943\tBreast Neoplasms\n"
    "N2\tReference T1 OMIM:114480\n"
    "R1\tAssociated Arg1:T2 Arg2:T1\n"
    "T3\tDisease 40 47;48 55\tOvarian tumours\n"
    "*\tEquiv T1 T3\n"
)


def write_pair(folder: Path, name: str, text, ann=None) -> Path:
    """Write name.txt (and name.ann unless ann is None); text and ann may be str or bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    text_path = folder / f"{name}.txt"
    text_path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    if ann is not None:
        ann_path = folder / f"{name}.ann"
        ann_path.write_bytes(ann if isinstance(ann, bytes) else ann.encode("utf-8"))
    return text_path


def read_all(path: Path, **options):
    return list(read_brat(path, **options))


def read_error(tmp_path: Path, ann: str, text: str = TEXT, **options) -> str:
    path = write_pair(tmp_path, "doc", text, ann)
    with pytest.raises(CorpusFormatError) as error:
        read_all(path, **options)
    return str(error.value)


# Reading


def test_read_document_fields(tmp_path):
    path = write_pair(tmp_path, "doc1", TEXT, ANN)
    [document] = read_all(path)
    assert document.doc_id == "doc1"
    assert document.text == TEXT
    assert [(p.offset, p.text) for p in document.passages] == [(0, TEXT)]
    assert document.location == str(path)


def test_read_text_bound_mentions(tmp_path):
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ANN))
    first, second = document.mentions[:2]
    assert (first.start, first.end, first.text, first.label) == (0, 13, "Breast cancer", "Disease")
    assert (second.start, second.end, second.text, second.label) == (18, 23, "BRCA1", "Gene")
    assert first.extra == ("T1",)
    assert second.extra == ("T2",)
    assert first.location.endswith("doc.ann, line 1")


def test_read_normalizations_joined(tmp_path):
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ANN))
    assert document.mentions[0].concept_id == "MESH:D001943|OMIM:114480"
    assert document.mentions[1].concept_id == ""


def test_read_normalization_before_mention(tmp_path):
    ann = "N1\tReference T1 MESH:D001943\nT1\tDisease 0 13\tBreast cancer\n"
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ann))
    assert document.mentions[0].concept_id == "MESH:D001943"


def test_read_shared_task_normalization(tmp_path):
    ann = "T1\tDisease 0 13\tBreast cancer\nN1\tReference Annotation:T1 Referent:MESH:D001943\n"
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ann))
    assert document.mentions[0].concept_id == "MESH:D001943"


def test_read_relations_and_equivalences(tmp_path):
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ANN))
    relation, equivalence = document.relations
    assert (relation.type, relation.arguments) == ("Associated", ("Arg1:T2", "Arg2:T1"))
    assert (equivalence.type, equivalence.arguments) == ("Equiv", ("T1", "T3"))
    assert relation.location.endswith("doc.ann, line 5")


def test_read_discontinuous_per_fragment(tmp_path):
    defects = []
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ANN), defects=defects)
    fragments = [m for m in document.mentions if m.extra == ("T3",)]
    expected = [(40, 47, "Ovarian"), (48, 55, "tumours")]
    assert [(m.start, m.end, m.text) for m in fragments] == expected
    assert {m.label for m in fragments} == {"Disease"}
    assert [d.kind for d in defects] == ["discontinuous_mention"]
    assert "T3" in defects[0].message


def test_read_discontinuous_keeps_concept_id(tmp_path):
    ann = "T1\tGene 18 23;29 38\tBRCA1 mutations\nN1\tReference T1 NCBIGene:672\n"
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ann))
    assert [m.concept_id for m in document.mentions] == ["NCBIGene:672", "NCBIGene:672"]


def test_read_empty_ann(tmp_path):
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ""))
    assert document.mentions == []
    assert document.relations == []


def test_read_mention_text_with_tab(tmp_path):
    text = "a\tb rest"
    [document] = read_all(write_pair(tmp_path, "doc", text, "T1\tThing 0 3\ta\tb\n"))
    assert document.mentions[0].text == "a\tb"


def test_read_folder_sorted(tmp_path):
    write_pair(tmp_path, "b", TEXT, "")
    write_pair(tmp_path, "a", TEXT, ANN)
    write_pair(tmp_path / "nested", "c", TEXT, "")
    (tmp_path / "notes.md").write_text("not a document", encoding="utf-8")
    documents = read_all(tmp_path)
    assert [d.doc_id for d in documents] == ["a", "b"]


def test_read_ann_path_reads_its_text(tmp_path):
    write_pair(tmp_path, "doc", TEXT, ANN)
    [document] = read_all(tmp_path / "doc.ann")
    assert document.doc_id == "doc"
    assert len(document.mentions) == 4


def test_read_unsupported_kinds_reported_once(tmp_path, caplog):
    ann = (
        "T1\tDisease 0 13\tBreast cancer\n"
        "T2\tExpression 29 38\tmutations\n"
        "E1\tExpression:T2 Theme:T1\n"
        "E2\tExpression:T2 Theme:T1\n"
        "A1\tNegation E1\n"
        "M2\tSpeculation E2\n"
        "#1\tAnnotatorNotes T1\tcheck this\n"
        "N1\tReference E1 GO:0010467\n"
    )
    defects = []
    with caplog.at_level(logging.WARNING):
        [document] = read_all(write_pair(tmp_path, "doc", TEXT, ann), defects=defects)
    assert len(document.mentions) == 2
    assert [d.kind for d in defects] == ["unsupported_annotation"]
    message = defects[0].message
    assert "2 attribute(s)" in message
    assert "2 event(s)" in message
    assert "1 note(s)" in message
    assert "1 normalization of a non-text-bound annotation(s)" in message
    assert "not kept" in caplog.text


def test_read_relation_to_event(tmp_path):
    ann = (
        "T1\tDisease 0 13\tBreast cancer\n"
        "T2\tExpression 29 38\tmutations\n"
        "E1\tExpression:T2 Theme:T1\n"
        "R1\tCause Arg1:E1 Arg2:T1\n"
    )
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ann))
    assert document.relations[0].arguments == ("Arg1:E1", "Arg2:T1")


# Offsets, byte-order marks and line ends


def test_read_crlf_in_ann(tmp_path):
    plain = read_all(write_pair(tmp_path / "plain", "doc", TEXT, ANN))
    converted = read_all(write_pair(tmp_path / "windows", "doc", TEXT, ANN.replace("\n", "\r\n")))
    assert [m.text for m in converted[0].mentions] == [m.text for m in plain[0].mentions]
    assert converted[0].relations[1].arguments == ("T1", "T3")
    assert converted[0].mentions[0].concept_id == "MESH:D001943|OMIM:114480"


def test_read_bom_in_ann(tmp_path):
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, "\ufeff" + ANN))
    assert document.mentions[0].extra == ("T1",)


def test_read_text_bom_counted(tmp_path):
    # brat counts the byte-order mark as character 0, so "Breast" starts at 1.
    ann = "T1\tDisease 1 14\tBreast cancer\n"
    defects = []
    [document] = read_all(write_pair(tmp_path, "doc", "\ufeff" + TEXT, ann), defects=defects)
    assert document.text == " " + TEXT
    assert document.mentions[0].start == 1
    assert defects == []


def test_read_text_bom_search(tmp_path):
    # Offsets counted without the mark land one character early; search moves them.
    ann = "T1\tDisease 0 13\tBreast cancer\n"
    path = write_pair(tmp_path, "doc", "\ufeff" + TEXT, ann)
    defects = []
    [document] = read_all(path, on_text_mismatch="search", defects=defects)
    assert (document.mentions[0].start, document.mentions[0].end) == (1, 14)
    assert [d.kind for d in defects] == ["text_mismatch"]


def test_read_text_crlf_counted(tmp_path):
    text = "Breast cancer.\r\nOvarian tumours.\r\n"
    # "Ovarian" starts at 16 because "\r" and "\n" are one character each.
    ann = "T1\tDisease 16 23\tOvarian\n"
    defects = []
    [document] = read_all(write_pair(tmp_path, "doc", text, ann), defects=defects)
    assert document.text == text
    assert document.mentions[0].text == "Ovarian"
    assert defects == []


def test_read_non_ascii_offsets(tmp_path):
    text = "Café naïve β-catenin"
    ann = "T1\tGene 11 20\tβ-catenin\n"
    defects = []
    [document] = read_all(write_pair(tmp_path, "doc", text, ann), defects=defects)
    assert document.mentions[0].text == "β-catenin"
    assert defects == []


# Text mismatches


MISMATCH_ANN = "T1\tDisease 1 14\tBreast cancer\n"


def test_mismatch_keep_is_default(tmp_path, caplog):
    defects = []
    with caplog.at_level(logging.WARNING):
        [document] = read_all(write_pair(tmp_path, "doc", TEXT, MISMATCH_ANN), defects=defects)
    mention = document.mentions[0]
    assert (mention.start, mention.end, mention.text) == (1, 14, "Breast cancer")
    assert [d.kind for d in defects] == ["text_mismatch"]
    assert defects[0].location.endswith("doc.ann, line 1")
    assert "differs from the text at offsets 1-14" in caplog.text


def test_mismatch_search_moves_mention(tmp_path):
    path = write_pair(tmp_path, "doc", TEXT, MISMATCH_ANN)
    [document] = read_all(path, on_text_mismatch="search")
    assert (document.mentions[0].start, document.mentions[0].end) == (0, 13)


def test_mismatch_search_not_found_leaves_out(tmp_path):
    path = write_pair(tmp_path, "doc", TEXT, "T1\tDisease 0 13\tLung cancer\n")
    defects = []
    [document] = read_all(path, on_text_mismatch="search", defects=defects)
    assert document.mentions == []
    assert "left out" in defects[0].message


def test_mismatch_skip(tmp_path):
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, MISMATCH_ANN), on_text_mismatch="skip")
    assert document.mentions == []


def test_mismatch_error(tmp_path):
    message = read_error(tmp_path, MISMATCH_ANN, on_text_mismatch="error")
    assert "doc.ann, line 1, field 3 (text)" in message
    assert "'reast cancer '" in message


def test_mismatch_discontinuous_keep(tmp_path):
    ann = "T1\tDisease 40 47;48 55\tOvarian tumors\n"
    defects = []
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ann), defects=defects)
    assert [(m.start, m.end) for m in document.mentions] == [(40, 47), (48, 55)]
    assert {m.text for m in document.mentions} == {"Ovarian tumors"}
    assert [d.kind for d in defects] == ["text_mismatch", "discontinuous_mention"]


def test_mismatch_discontinuous_search(tmp_path):
    ann = "T1\tDisease 40 47;48 55\tOvarian tumors\n"
    path = write_pair(tmp_path, "doc", TEXT, ann)
    [document] = read_all(path, on_text_mismatch="search")
    assert document.mentions == []


def test_mismatch_discontinuous_error(tmp_path):
    ann = "T1\tDisease 40 47;48 55\tOvarian tumors\n"
    message = read_error(tmp_path, ann, on_text_mismatch="error")
    assert "fragments 40-47;48-55" in message


# Bad input


def test_missing_ann_is_error_by_default(tmp_path):
    path = write_pair(tmp_path, "doc", TEXT)
    with pytest.raises(CorpusFormatError, match="on_missing_ann='empty'") as error:
        read_all(path)
    assert "doc.ann: annotation file not found" in str(error.value)


def test_missing_ann_read_as_empty(tmp_path):
    write_pair(tmp_path, "a", TEXT, ANN)
    write_pair(tmp_path, "b", TEXT)
    defects = []
    documents = read_all(tmp_path, on_missing_ann="empty", defects=defects)
    assert [len(d.mentions) for d in documents] == [4, 0]
    assert [d.kind for d in defects] == ["discontinuous_mention", "missing_annotations"]
    assert defects[1].location.endswith("b.txt")


def test_missing_ann_keeps_earlier_documents(tmp_path):
    write_pair(tmp_path, "a", TEXT, ANN)
    write_pair(tmp_path, "b", TEXT)
    reader = read_brat(tmp_path)
    assert next(reader).doc_id == "a"
    with pytest.raises(CorpusFormatError):
        next(reader)


def test_ann_without_text_reported(tmp_path):
    write_pair(tmp_path, "a", TEXT, ANN)
    (tmp_path / "orphan.ann").write_text(ANN, encoding="utf-8")
    defects = []
    documents = read_all(tmp_path, defects=defects)
    assert [d.doc_id for d in documents] == ["a"]
    assert [d.kind for d in defects] == ["missing_text", "discontinuous_mention"]
    assert "orphan.ann" in defects[0].message


@pytest.mark.parametrize(
    "ann, expected",
    [
        ("T1\tDisease 0 13\n", "line 1: the text-bound annotation has 2 tab-separated field(s)"),
        ("T1\tDisease 0\tBreast\n", "line 1, field 2 (type and offsets): '0' is not a pair"),
        ("T1\tDisease a 13\tBreast cancer\n", "field 2 (type and offsets): 'a 13'"),
        ("T1\tDisease -1 13\tBreast cancer\n", "field 2 (type and offsets): '-1 13'"),
        ("T1\tDisease 0 13;\tBreast cancer\n", "field 2 (type and offsets): ''"),
        ("T1\t 0 13\tBreast cancer\n", "field 2 (type and offsets): the entity type is empty"),
        ("T1\tDisease 5 5\t\n", "the span 5-5 is empty or reversed"),
        ("T1\tDisease 9 5\tcance\n", "the span 9-5 is empty or reversed"),
        ("T1 Disease 0 13 Breast cancer\n", "field 1 (ID): 'T1 Disease 0 13 Breast cancer'"),
        ("X\tDisease 0 13\tBreast cancer\n", "field 1 (ID): 'X' is not a brat annotation ID"),
        ("Q1\tDisease 0 13\tBreast cancer\n", "field 1 (ID): unknown annotation kind 'Q1'"),
        ("T1\tDisease 0 13\tBreast cancer\nN1\tReference T1\n", "line 2, field 2 (normalization)"),
        ("T1\tDisease 0 13\tBreast cancer\nN1\tReference T1 D001943\n", "line 2, field 2"),
        ("T1\tDisease 0 13\tBreast cancer\nR1\tAssociated Arg1:T1\n", "line 2, field 2 (relation)"),
        ("T1\tDisease 0 13\tBreast cancer\nR1\tAssociated T1 T1\n", "line 2, field 2 (relation)"),
        ("T1\tDisease 0 13\tBreast cancer\n*\tEquiv T1\n", "line 2, field 2 (equivalence)"),
    ],
)
def test_error_malformed_line(tmp_path, ann, expected):
    message = read_error(tmp_path, ann)
    assert "doc.ann, line" in message
    assert expected in message


def test_error_offsets_outside_text(tmp_path):
    message = read_error(tmp_path, f"T1\tDisease 60 {len(TEXT) + 1}\tx\n")
    assert "doc.ann, line 1, field 2" in message
    assert f"outside the text, which has {len(TEXT)} characters" in message


def test_error_duplicate_id(tmp_path):
    ann = "T1\tDisease 0 13\tBreast cancer\nT2\tGene 18 23\tBRCA1\nT1\tGene 18 23\tBRCA1\n"
    message = read_error(tmp_path, ann)
    assert "line 3, field 1 (ID): duplicate annotation ID 'T1', already used on line 1" in message


def test_error_undefined_reference(tmp_path):
    ann = "T1\tDisease 0 13\tBreast cancer\nR1\tAssociated Arg1:T1 Arg2:T9\n"
    message = read_error(tmp_path, ann)
    assert "line 2, field 2: the annotation ID 'T9' is not defined" in message


def test_error_undefined_normalization_target(tmp_path):
    message = read_error(tmp_path, "N1\tReference T4 MESH:D001943\n")
    assert "line 1, field 2: the annotation ID 'T4' is not defined" in message


def test_error_invalid_utf8_text(tmp_path):
    path = write_pair(tmp_path, "doc", b"Breast \xff cancer", "")
    with pytest.raises(CorpusFormatError, match=r"doc.txt: invalid UTF-8 at byte 7"):
        read_all(path)


def test_error_invalid_utf8_ann(tmp_path):
    ann = b"T1\tDisease 0 13\tBreast cancer\nT2\tGene 18 23\t\xff\n"
    path = write_pair(tmp_path, "doc", TEXT, ann)
    with pytest.raises(CorpusFormatError, match=r"doc.ann, line 2: invalid UTF-8"):
        read_all(path)


def test_error_folder_without_text(tmp_path):
    (tmp_path / "a.ann").write_text(ANN, encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="no .txt files found"):
        read_all(tmp_path)


def test_error_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_all(tmp_path / "absent.txt")


def test_error_ann_path_without_text(tmp_path):
    (tmp_path / "doc.ann").write_text(ANN, encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="doc.txt"):
        read_all(tmp_path / "doc.ann")


def test_error_other_file_type(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="expected a brat .txt file"):
        read_all(path)


@pytest.mark.parametrize(
    "options",
    [{"on_text_mismatch": "fix"}, {"on_missing_ann": "skip"}, {"search_window": -1}],
)
def test_error_invalid_option(tmp_path, options):
    path = write_pair(tmp_path, "doc", TEXT, ANN)
    with pytest.raises(ValueError, match="Invalid"):
        read_all(path, **options)


# Mapping to spaCy Docs


def test_to_doc_keeps_fragments_and_ids(tmp_path):
    nlp = spacy.blank("en")
    [document] = read_all(write_pair(tmp_path, "doc", TEXT, ANN))
    doc = to_doc(nlp, document)
    spans = doc.spans[MENTIONS_KEY]
    assert [span.text for span in spans] == ["Breast cancer", "BRCA1", "Ovarian", "tumours"]
    assert spans[0].kb_id_ == "MESH:D001943|OMIM:114480"
    sources = doc._.get(MENTION_SOURCES_EXTENSION)
    assert [sources[span.id_]["extra"] for span in spans] == [["T1"], ["T2"], ["T3"], ["T3"]]


def test_warnings_rate_limited(tmp_path, caplog):
    ann = "".join(f"T{i}\tDisease 1 14\tBreast cancer\n" for i in range(1, 13))
    defects = []
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.brat"):
        read_all(write_pair(tmp_path, "doc", TEXT, ann), defects=defects)
    assert len(defects) == 12
    brat_records = [r for r in caplog.records if r.name == "spacy_biobert.readers.brat"]
    assert len(brat_records) == 11
    assert "12 defects of kind 'text_mismatch' in all" in brat_records[-1].getMessage()
