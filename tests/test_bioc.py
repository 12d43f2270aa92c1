"""The BioC XML and JSON readers and the BioC JSON writer."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import stat
from collections import Counter
from pathlib import Path

import pytest
import spacy

from spacy_biobert.readers.bioc import (
    BiocMention,
    build_bioc_document,
    read_bioc_json,
    read_bioc_xml,
    write_bioc_json,
)
from spacy_biobert.readers.iob import CorpusFormatError
from spacy_biobert.readers.mentions import (
    MENTIONS_KEY,
    AnnotatedDocument,
    Mention,
    Passage,
    Relation,
    from_doc,
    to_doc,
)
from spacy_biobert.readers.pubtator import read_pubtator

TITLE = "Ocular and auditory toxicity in patients."
ABSTRACT = "Desferrioxamine caused hearing loss."
# The abstract starts at len(TITLE) + 1 = 42, so the text is TITLE + " " + ABSTRACT.


def annotation_xml(annotation_id, type_, identifier, locations, text, role=None):
    infons = f'<infon key="type">{type_}</infon>'
    if role:
        infons += f'<infon key="CompositeRole">{role}</infon>'
    if identifier is not None:
        infons += f'<infon key="MESH">{identifier}</infon>'
    places = "".join(f'<location offset="{o}" length="{n}"/>' for o, n in locations)
    return f'<annotation id="{annotation_id}">{infons}{places}<text>{text}</text></annotation>'


def document_xml(doc_id="100", title_annotations=None, abstract_annotations=None, relations=""):
    if title_annotations is None:
        title_annotations = (
            annotation_xml("0", "Disease", "D014786|D006311", [(0, 28)],
                           "Ocular and auditory toxicity", "CompositeMention")
            + annotation_xml("1", "Disease", "D014786", [(0, 6), (20, 8)],
                             "Ocular toxicity", "IndividualMention")
        )
    if abstract_annotations is None:
        abstract_annotations = (
            annotation_xml("2", "Chemical", "D003676", [(42, 15)], "Desferrioxamine")
            + annotation_xml("3", "Disease", "D034381", [(65, 12)], "hearing loss")
        )
    return (
        f"<document><id>{doc_id}</id>"
        f'<passage><infon key="type">title</infon><offset>0</offset><text>{TITLE}</text>'
        f"{title_annotations}</passage>"
        f'<passage><infon key="type">abstract</infon><offset>42</offset>'
        f"<text>{ABSTRACT}</text>{abstract_annotations}</passage>"
        f"{relations}</document>"
    )


CID = (
    '<relation id="R0"><infon key="relation">CID</infon>'
    '<infon key="Chemical">D003676</infon><infon key="Disease">D034381</infon></relation>'
)


def collection_xml(*documents: str) -> str:
    return (
        "<?xml version='1.0' encoding='UTF-8'?><!DOCTYPE collection SYSTEM 'BioC.dtd'>\n"
        "<collection><source>test</source><date>2024</date><key>k</key>\n"
        + "\n".join(documents)
        + "\n</collection>\n"
    )


def json_document(doc_id="7", annotations=None, **fields):
    if annotations is None:
        annotations = [
            {
                "id": "1",
                "infons": {"type": "Gene", "identifier": "672", "valid": True},
                "text": "BRCA1",
                "locations": [{"offset": 6, "length": 5}],
            }
        ]
    document = {
        "id": doc_id,
        "infons": {},
        "passages": [
            {
                "offset": 0,
                "infons": {"type": "title", "year": "2014"},
                "text": "Human BRCA1 carriers.",
                "sentences": [],
                "annotations": annotations,
                "relations": [],
            }
        ],
        "relations": [],
    }
    document.update(fields)
    return document


def write_file(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def read_xml(tmp_path: Path, text: str, **options):
    return list(read_bioc_xml(write_file(tmp_path, text, "corpus.xml"), **options))


def read_json(tmp_path: Path, text: str, name: str = "corpus.json", **options):
    return list(read_bioc_json(write_file(tmp_path, text, name), **options))


def xml_error(tmp_path: Path, text: str, **options) -> str:
    with pytest.raises(CorpusFormatError) as error:
        read_xml(tmp_path, text, **options)
    return str(error.value)


def json_error(tmp_path: Path, text: str, name: str = "corpus.json", **options) -> str:
    with pytest.raises(CorpusFormatError) as error:
        read_json(tmp_path, text, name, **options)
    return str(error.value)


def without_locations(document):
    """Return the document with every location string emptied, to compare two readings."""
    return dataclasses.replace(
        document,
        location="",
        mentions=[dataclasses.replace(m, location="") for m in document.mentions],
        relations=[dataclasses.replace(r, location="") for r in document.relations],
    )


# Reading XML


def test_xml_text_and_passages(tmp_path):
    document = read_xml(tmp_path, collection_xml(document_xml()))[0]
    assert document.doc_id == "100"
    assert document.text == f"{TITLE} {ABSTRACT}"
    assert [(p.offset, p.text, p.type) for p in document.passages] == [
        (0, TITLE, "title"),
        (42, ABSTRACT, "abstract"),
    ]
    assert document.passages[1].infons == {"type": "abstract"}


def test_xml_mentions(tmp_path):
    path = write_file(tmp_path, collection_xml(document_xml()), "corpus.xml")
    mentions = list(read_bioc_xml(path))[0].mentions
    described = [(m.start, m.end, m.text, m.label, m.concept_id) for m in mentions]
    assert described == [
        (0, 28, "Ocular and auditory toxicity", "Disease", "D014786|D006311"),
        (0, 28, "Ocular toxicity", "Disease", "D014786"),
        (42, 57, "Desferrioxamine", "Chemical", "D003676"),
        (65, 77, "hearing loss", "Disease", "D034381"),
    ]
    assert mentions[0].annotation_id == "0"
    assert mentions[0].infons == {
        "type": "Disease",
        "CompositeRole": "CompositeMention",
        "MESH": "D014786|D006311",
    }
    assert mentions[2].location == f"{path}, document '100', passage at offset 42, annotation '2'"


def test_xml_relation_without_nodes(tmp_path):
    document = read_xml(tmp_path, collection_xml(document_xml(relations=CID)))[0]
    relation = document.relations[0]
    assert (relation.type, relation.arguments) == ("CID", ("D003676", "D034381"))
    assert relation.relation_id == "R0"
    assert relation.infons["Chemical"] == "D003676"
    assert relation.nodes == ()


def test_xml_relation_nodes_and_roles(tmp_path):
    relation = (
        '<relation id="R1"><infon key="type">Treats</infon>'
        '<node refid="2" role="drug"/><node refid="3" role="effect"/></relation>'
    )
    document = read_xml(tmp_path, collection_xml(document_xml(relations=relation)))[0]
    assert document.relations[0].type == "Treats"
    assert document.relations[0].arguments == ("2", "3")
    assert document.relations[0].nodes == (("2", "drug"), ("3", "effect"))


def test_xml_version_2_attributes(tmp_path):
    text = (
        '<collection><document id="9"><passage offset="0"><text>Aspirin.</text>'
        '<annotation id="a"><infon key="type">Chemical</infon>'
        '<location offset="0" length="7"/><text>Aspirin</text></annotation>'
        '</passage><passage offset="10"><text>Second.</text></passage></document></collection>'
    )
    document = read_xml(tmp_path, text)[0]
    assert document.doc_id == "9"
    assert document.text == "Aspirin.  Second."
    assert [(m.start, m.end) for m in document.mentions] == [(0, 7)]


def test_xml_passage_of_sentences(tmp_path):
    text = (
        "<collection><document><id>3</id><passage><offset>5</offset>"
        "<sentence><offset>5</offset><text>One.</text>"
        '<annotation id="s"><infon key="type">Gene</infon>'
        '<location offset="5" length="3"/><text>One</text></annotation></sentence>'
        "<sentence><offset>11</offset><text>Two.</text></sentence>"
        "</passage></document></collection>"
    )
    document = read_xml(tmp_path, text)[0]
    assert document.text == "     One.  Two."
    assert document.passages[0].text == "One.  Two."
    assert document.mentions[0].location.endswith(
        "document '3', passage at offset 5, sentence at offset 5, annotation 's'"
    )


def test_xml_document_level_annotation(tmp_path):
    extra = annotation_xml("9", "Disease", "D1", [(65, 12)], "hearing loss")
    document = read_xml(tmp_path, collection_xml(document_xml(relations=extra)))[0]
    assert document.mentions[-1].location.endswith("document '100', annotation '9'")


def test_xml_byte_order_mark_accepted(tmp_path):
    path = tmp_path / "corpus.xml"
    path.write_bytes(b"\xef\xbb\xbf" + collection_xml(document_xml()).encode("utf-8"))
    assert len(list(read_bioc_xml(path))[0].mentions) == 4


def test_xml_crlf_line_ends(tmp_path):
    text = collection_xml(document_xml(), document_xml("200")).replace("\n", "\r\n")
    assert [d.doc_id for d in read_xml(tmp_path, text)] == ["100", "200"]


def test_xml_external_entity_not_fetched(tmp_path):
    secret = write_file(tmp_path, "secret contents", "secret.txt")
    text = (
        f'<?xml version="1.0"?><!DOCTYPE collection [<!ENTITY ext SYSTEM "{secret.as_uri()}">]>'
        "<collection><document><id>1</id><passage><offset>0</offset>"
        "<text>&ext;</text></passage></document></collection>"
    )
    message = xml_error(tmp_path, text)
    assert "corpus.xml, line 1, column" in message
    assert "undefined entity" in message
    assert "secret contents" not in message


# Reading JSON


def test_json_collection(tmp_path):
    collection = {"source": "s", "documents": [json_document("7"), json_document("8")]}
    documents = read_json(tmp_path, json.dumps(collection, indent=2))
    assert [d.doc_id for d in documents] == ["7", "8"]
    mention = documents[0].mentions[0]
    assert (mention.start, mention.end, mention.label, mention.concept_id) == (6, 11, "Gene", "672")
    assert mention.infons["valid"] is True
    assert documents[0].passages[0].infons == {"type": "title", "year": "2014"}


def test_json_lines(tmp_path):
    text = json.dumps(json_document("7")) + "\n\n" + json.dumps(json_document("8")) + "\n"
    path = write_file(tmp_path, text, "corpus.jsonl")
    documents = list(read_bioc_json(path))
    assert [d.doc_id for d in documents] == ["7", "8"]
    assert documents[1].location == f"{path}, line 3, document '8'"


def test_json_single_document_keeps_other_fields(tmp_path):
    document = json_document(pmid=24633240, journal="Nat Biotechnol", _id="24633240|None")
    result = read_json(tmp_path, json.dumps(document, indent=1))[0]
    assert result.other_fields == {
        "pmid": 24633240,
        "journal": "Nat Biotechnol",
        "_id": "24633240|None",
    }
    assert build_bioc_document(result)["pmid"] == 24633240


def test_json_list_of_documents(tmp_path):
    text = json.dumps([json_document("7"), json_document("8")], indent=1)
    assert [d.doc_id for d in read_json(tmp_path, text)] == ["7", "8"]


def test_json_integer_document_id(tmp_path):
    assert read_json(tmp_path, json.dumps(json_document(7)))[0].doc_id == "7"


def test_json_identifier_keys(tmp_path):
    annotations = [
        {"infons": {"type": "Gene", "Identifier": "A"}, "text": "Human",
         "locations": [{"offset": 0, "length": 5}]},
        {"infons": {"type": "Gene", "identifier": None}, "text": "BRCA1",
         "locations": [{"offset": 6, "length": 5}]},
        {"infons": {"type": "Gene", "NCBI Gene": "672"}, "text": "BRCA1",
         "locations": [{"offset": 6, "length": 5}]},
    ]
    text = json.dumps(json_document(annotations=annotations))
    assert [m.concept_id for m in read_json(tmp_path, text)[0].mentions] == ["A", "", ""]
    custom = read_json(tmp_path, text, identifier_keys=["NCBI Gene"])[0].mentions
    assert [m.concept_id for m in custom] == ["", "", "672"]


def test_json_byte_order_mark_accepted(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(json_document()).encode("utf-8"))
    assert [d.doc_id for d in read_bioc_json(path)] == ["7"]


# Discontinuous annotations

DISCONTINUOUS = collection_xml(document_xml(abstract_annotations=""))


def test_discontinuous_span_by_default(tmp_path, caplog):
    defects = []
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.bioc"):
        mentions = read_xml(tmp_path, DISCONTINUOUS, defects=defects)[0].mentions
    mention = mentions[1]
    assert (mention.start, mention.end, mention.text) == (0, 28, "Ocular toxicity")
    assert mention.locations == ((0, 6), (20, 8))
    assert [d.kind for d in defects] == ["discontinuous_annotation"]
    assert defects[0].location.endswith("document '100', passage at offset 0, annotation '1'")
    assert "several locations (0-6, 20-28)" in defects[0].message
    assert "annotation '1'" in caplog.text


def test_discontinuous_split(tmp_path):
    mentions = read_xml(tmp_path, DISCONTINUOUS, on_discontinuous="split")[0].mentions
    parts = [m for m in mentions if m.annotation_id == "1"]
    assert [(m.start, m.end) for m in parts] == [(0, 6), (20, 28)]
    assert [m.text for m in parts] == ["Ocular toxicity", "Ocular toxicity"]


def test_discontinuous_skip(tmp_path):
    defects = []
    mentions = read_xml(tmp_path, DISCONTINUOUS, on_discontinuous="skip", defects=defects)[0].mentions
    assert [m.annotation_id for m in mentions] == ["0"]
    assert "left out (on_discontinuous='skip')" in defects[0].message


def test_discontinuous_error(tmp_path):
    message = xml_error(tmp_path, DISCONTINUOUS, on_discontinuous="error")
    assert "corpus.xml, document '100', passage at offset 0, annotation '1'" in message
    assert "field 'locations'" in message


@pytest.mark.parametrize("mode, expected", [("span", 2), ("split", 3)])
def test_discontinuous_written_once(tmp_path, mode, expected):
    documents = read_xml(tmp_path, DISCONTINUOUS, on_discontinuous=mode)
    assert len(documents[0].mentions) == expected
    written = build_bioc_document(documents[0])
    annotations = written["passages"][0]["annotations"]
    assert [a["id"] for a in annotations] == ["0", "1"]
    assert annotations[1]["locations"] == [
        {"offset": 0, "length": 6},
        {"offset": 20, "length": 8},
    ]
    assert annotations[1]["text"] == "Ocular toxicity"


def test_discontinuous_text_mismatch(tmp_path):
    wrong = annotation_xml("1", "Disease", "D1", [(0, 6), (21, 7)], "Ocular toxicity")
    text = collection_xml(document_xml(title_annotations=wrong, abstract_annotations=""))
    defects = []
    read_xml(tmp_path, text, defects=defects)
    assert [d.kind for d in defects] == ["text_mismatch", "discontinuous_annotation"]
    assert "'Ocular oxicity'" in defects[0].message
    skipped = read_xml(tmp_path, text, on_text_mismatch="search")[0].mentions
    assert skipped == []


# Bad input


def test_error_location_outside_document(tmp_path):
    bad = annotation_xml("3", "Disease", "D1", [(70, 12)], "hearing loss")
    message = xml_error(tmp_path, collection_xml(document_xml(abstract_annotations=bad)))
    assert "corpus.xml, document '100', passage at offset 42, annotation '3'" in message
    assert "location 1, fields 'offset', 'length'" in message
    assert "78 characters" in message


def test_error_negative_offset(tmp_path):
    bad = annotation_xml("3", "Disease", "D1", [(-1, 3)], "hea")
    message = xml_error(tmp_path, collection_xml(document_xml(abstract_annotations=bad)))
    assert "annotation '3', location 1" in message
    assert "outside the document text" in message


def test_error_empty_location(tmp_path):
    bad = annotation_xml("3", "Disease", "D1", [(65, 0)], "")
    message = xml_error(tmp_path, collection_xml(document_xml(abstract_annotations=bad)))
    assert "annotation '3', location 1, field 'length'" in message


def test_error_offset_not_integer(tmp_path):
    text = collection_xml(document_xml()).replace("<offset>42</offset>", "<offset>4x</offset>")
    message = xml_error(tmp_path, text)
    assert "corpus.xml, document '100', passage 2, field 'offset'" in message
    assert "'4x' is not an integer" in message


def test_location_outside_passage_warns(tmp_path):
    # "Desferrioxamine" lies in the abstract, but the annotation is in the title passage.
    moved = annotation_xml("2", "Chemical", "D003676", [(42, 15)], "Desferrioxamine")
    defects = []
    text = collection_xml(document_xml(title_annotations=moved, abstract_annotations=""))
    mentions = read_xml(tmp_path, text, defects=defects)[0].mentions
    assert [(m.start, m.end) for m in mentions] == [(42, 57)]
    assert [d.kind for d in defects] == ["location_outside_passage"]
    assert defects[0].location.endswith("passage at offset 0, annotation '2', location 1")


def test_error_overlapping_passages(tmp_path):
    text = collection_xml(document_xml()).replace("<offset>42</offset>", "<offset>30</offset>")
    message = xml_error(tmp_path, text)
    assert "corpus.xml, document '100', passage at offset 30, field 'offset'" in message
    assert "before the end of the previous passage, at 41" in message


def test_error_missing_document_id(tmp_path):
    message = xml_error(tmp_path, collection_xml(document_xml().replace("<id>100</id>", "")))
    assert "corpus.xml, document 1 of the file" in message
    assert "document ID is missing" in message


def test_missing_type_warns(tmp_path):
    bad = annotation_xml("3", "", "D1", [(65, 12)], "hearing loss")
    defects = []
    text = collection_xml(document_xml(abstract_annotations=bad))
    mentions = read_xml(tmp_path, text, defects=defects)[0].mentions
    assert len(mentions) == 2
    missing = [d for d in defects if d.kind == "missing_type"]
    assert len(missing) == 1
    assert missing[0].location.endswith("document '100', passage at offset 42, annotation '3'")
    assert "infon 'type'" in missing[0].message


def test_annotation_without_location_warns(tmp_path):
    bad = annotation_xml("3", "Disease", "D1", [], "hearing loss")
    defects = []
    text = collection_xml(document_xml(title_annotations="", abstract_annotations=bad))
    read_xml(tmp_path, text, defects=defects)
    assert [d.kind for d in defects] == ["annotation_without_location"]
    assert defects[0].location.endswith("annotation '3'")


MISMATCH = annotation_xml("3", "Disease", "D034381", [(63, 12)], "hearing loss")


def test_mismatch_keep_warns(tmp_path, caplog):
    defects = []
    text = collection_xml(document_xml(title_annotations="", abstract_annotations=MISMATCH))
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.bioc"):
        mention = read_xml(tmp_path, text, defects=defects)[0].mentions[-1]
    assert (mention.start, mention.end, mention.text) == (63, 75, "hearing loss")
    assert [d.kind for d in defects] == ["text_mismatch"]
    assert "document '100', passage at offset 42, annotation '3'" in defects[0].location
    assert "field 'text': 'hearing loss' differs from the text at offsets 63-75" in caplog.text


def test_mismatch_search(tmp_path):
    text = collection_xml(document_xml(abstract_annotations=MISMATCH))
    mention = read_xml(tmp_path, text, on_text_mismatch="search")[0].mentions[-1]
    assert (mention.start, mention.end) == (65, 77)


def test_mismatch_skip(tmp_path):
    text = collection_xml(document_xml(abstract_annotations=MISMATCH))
    assert len(read_xml(tmp_path, text, on_text_mismatch="skip")[0].mentions) == 2


def test_mismatch_error(tmp_path):
    text = collection_xml(document_xml(abstract_annotations=MISMATCH))
    message = xml_error(tmp_path, text, on_text_mismatch="error")
    assert "corpus.xml, document '100', passage at offset 42, annotation '3'" in message
    assert "field 'text'" in message
    assert "on_text_mismatch='keep'" in message


def test_duplicate_id_kept(tmp_path):
    defects = []
    plain = document_xml(title_annotations="")
    text = collection_xml(plain, document_xml("200", title_annotations=""), plain)
    documents = read_xml(tmp_path, text, defects=defects)
    assert [d.doc_id for d in documents] == ["100", "200", "100"]
    assert [d.kind for d in defects] == ["duplicate_id"]
    assert defects[0].location.endswith("corpus.xml, document '100'")
    assert "ID '100' was already used" in defects[0].message


def test_duplicate_id_skipped(tmp_path):
    text = json.dumps({"documents": [json_document("7"), json_document("7")]})
    documents = read_json(tmp_path, text, on_duplicate_id="skip")
    assert [d.doc_id for d in documents] == ["7"]


def test_error_truncated_xml(tmp_path):
    text = collection_xml(document_xml())
    message = xml_error(tmp_path, text[: text.index("<passage>", 200)])
    assert "corpus.xml, line 3, column" in message
    assert "invalid XML (no element found)" in message
    assert "truncated" in message


def test_error_wrong_xml_root(tmp_path):
    message = xml_error(tmp_path, "<html><body/></html>")
    assert "root element is <html>, expected <collection>" in message


def test_error_xml_without_documents(tmp_path):
    message = xml_error(tmp_path, "<collection><source/></collection>")
    assert "corpus.xml: no documents found" in message


def test_error_truncated_json(tmp_path):
    text = json.dumps({"documents": [json_document()]}, indent=2)
    message = json_error(tmp_path, text[:300])
    assert "corpus.json, line" in message
    assert ", column " in message
    assert "invalid JSON" in message


def test_error_truncated_json_line(tmp_path):
    text = json.dumps(json_document("7")) + "\n" + json.dumps(json_document("8"))[:50]
    message = json_error(tmp_path, text, "corpus.jsonl")
    assert "corpus.jsonl, line 2, column" in message


@pytest.mark.parametrize(
    "value, found",
    [
        ({"articles": []}, "an object with the keys ['articles']"),
        ("documents", "a string"),
        (42, "the number 42"),
    ],
)
def test_error_unknown_json_shape(tmp_path, value, found):
    message = json_error(tmp_path, json.dumps(value, indent=1))
    assert "corpus.json" in message
    assert f"unknown top-level JSON shape, {found}" in message
    assert "a BioC collection" in message


def test_error_utf16_json(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_bytes(json.dumps(json_document()).encode("utf-16"))
    with pytest.raises(CorpusFormatError, match="UTF-16 byte-order mark"):
        list(read_bioc_json(path))


def test_error_invalid_utf8_json(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_bytes(b'{"documents": [\n{"id": "caf\xe9"}]}')
    with pytest.raises(CorpusFormatError, match=r"corpus\.json, line 2: invalid UTF-8 at byte 12"):
        list(read_bioc_json(path))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"passages": {"offset": 0}}, "document '7', field 'passages': expected a list"),
        ({"infons": ["type"]}, "document '7', field 'infons': expected an object"),
    ],
)
def test_error_json_field_type(tmp_path, change, field):
    message = json_error(tmp_path, json.dumps(json_document(**change)))
    assert "corpus.json, line 1, " + field in message


def test_error_json_location_offset_type(tmp_path):
    annotation = {"id": "1", "infons": {"type": "Gene"}, "text": "BRCA1",
                  "locations": [{"offset": 6.5, "length": 5}]}
    message = json_error(tmp_path, json.dumps(json_document(annotations=[annotation])))
    assert "document '7', passage at offset 0, annotation '1', location 1" in message
    assert "field 'offset': 6.5 is not an integer" in message


def test_error_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        list(read_bioc_xml(tmp_path / "missing.xml"))


@pytest.mark.parametrize(
    "options",
    [
        {"on_text_mismatch": "fix"},
        {"on_duplicate_id": "merge"},
        {"on_discontinuous": "join"},
        {"search_window": -1},
        {"identifier_keys": "MESH"},
    ],
)
def test_error_invalid_option(tmp_path, options):
    path = write_file(tmp_path, json.dumps(json_document()), "corpus.json")
    with pytest.raises(ValueError, match="Invalid"):
        list(read_bioc_json(path, **options))


# Writing


def test_write_round_trip(tmp_path):
    documents = read_xml(tmp_path, collection_xml(document_xml(relations=CID), document_xml("200")))
    output = tmp_path / "out" / "corpus.json"
    assert write_bioc_json(documents, output, source="test") == 2
    assert json.loads(output.read_text())["source"] == "test"
    back = list(read_bioc_json(output))
    assert [without_locations(d) for d in back] == [without_locations(d) for d in documents]


def test_write_json_lines(tmp_path):
    documents = read_json(tmp_path, json.dumps(json_document(pmid=5)))
    stream = io.StringIO()
    assert write_bioc_json(documents * 2, stream, lines=True) == 2
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["pmid"] == 5


def test_write_file_permissions(tmp_path):
    output = tmp_path / "corpus.json"
    write_bioc_json([], output)
    assert stat.S_IMODE(output.stat().st_mode) & 0o044 == 0o044
    assert json.loads(output.read_text())["documents"] == []


def test_write_plain_documents():
    document = AnnotatedDocument(
        doc_id="1",
        text="BRCA1 causes cancer.",
        mentions=[Mention(0, 5, "BRCA1", "Gene", "672"), Mention(13, 19, "cancer", "Disease")],
        relations=[Relation("Causes", ("672", "D009369"))],
    )
    written = build_bioc_document(document)
    assert written["passages"][0]["text"] == "BRCA1 causes cancer."
    annotations = written["passages"][0]["annotations"]
    assert annotations[0]["infons"] == {"type": "Gene", "identifier": "672"}
    assert annotations[1]["infons"] == {"type": "Disease"}
    assert annotations[1]["id"] == "1"
    assert written["relations"][0]["infons"] == {
        "type": "Causes",
        "argument1": "672",
        "argument2": "D009369",
    }


def test_write_predictions_from_doc(tmp_path):
    nlp = spacy.blank("en")
    doc = nlp("Aspirin and cisplatin.")
    doc.ents = [doc.char_span(0, 7, label="Chemical"), doc.char_span(12, 21, label="Chemical")]
    output = tmp_path / "predicted.json"
    write_bioc_json([from_doc(doc, doc_id="5")], output)
    mentions = list(read_bioc_json(output))[0].mentions
    assert [(m.start, m.end, m.text, m.label) for m in mentions] == [
        (0, 7, "Aspirin", "Chemical"),
        (12, 21, "cisplatin", "Chemical"),
    ]


def test_write_failure_keeps_old_file(tmp_path):
    output = write_file(tmp_path, "old contents\n", "out.json")
    with pytest.raises(ValueError, match="Invalid document ID"):
        write_bioc_json([AnnotatedDocument(doc_id="", text="text")], output)
    assert output.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize(
    "document, match",
    [
        (AnnotatedDocument("1", "a b", mentions=[Mention(0, 9, "a", "Disease")]), "outside the text"),
        (AnnotatedDocument("1", "a b", passages=[Passage(0, "a")]), "in no passage"),
        (AnnotatedDocument("1", "a b", passages=[Passage(0, "x")]), "differs from the document"),
        (
            AnnotatedDocument("1", "a b", passages=[Passage(0, "a b"), Passage(2, "b")]),
            "starts before the previous passage ends",
        ),
    ],
)
def test_write_invalid_document(document, match):
    with pytest.raises(ValueError, match=match):
        build_bioc_document(document)


# The real corpora

BC5CDR_SPLITS = [
    # split, documents, annotations, of which IndividualMention, discontinuous, CID relations
    ("Training", 500, 9570, 185, 73, 1038),
    ("Development", 500, 9773, 182, 43, 1012),
    ("Test", 500, 9928, 119, 37, 1066),
]
PUBTATOR_MENTIONS = {"Training": 9385, "Development": 9591, "Test": 9809}


def bc5cdr_files(shared_data: Path, split: str):
    bioc = shared_data / "bc5cdr" / "bioc" / f"CDR_{split}Set.BioC.xml"
    pubtator = shared_data / "bc5cdr" / "pubtator" / f"CDR_{split}Set.PubTator.txt"
    if not bioc.is_file() or not pubtator.is_file():
        pytest.skip(f"{bioc} or {pubtator} is missing")
    return bioc, pubtator


def is_individual(mention: BiocMention) -> bool:
    return mention.infons.get("CompositeRole") == "IndividualMention"


@pytest.mark.integration
@pytest.mark.parametrize("split, n_documents, n_annotations, n_parts, n_split, n_cid", BC5CDR_SPLITS)
def test_real_bc5cdr_counts(shared_data, split, n_documents, n_annotations, n_parts, n_split, n_cid):
    bioc, _ = bc5cdr_files(shared_data, split)
    defects = []
    documents = list(read_bioc_xml(bioc, defects=defects))
    mentions = [m for d in documents for m in d.mentions]
    assert len(documents) == n_documents
    assert len(mentions) == n_annotations
    assert sum(is_individual(m) for m in mentions) == n_parts
    assert sum(len(m.locations) > 1 for m in mentions) == n_split
    assert sum(len(d.relations) for d in documents) == n_cid
    assert Counter(d.kind for d in defects)["discontinuous_annotation"] == n_split


@pytest.mark.integration
def test_real_bc5cdr_text_defects(shared_data):
    bioc, _ = bc5cdr_files(shared_data, "Training")
    defects = []
    list(read_bioc_xml(bioc, defects=defects))
    mismatches = [d for d in defects if d.kind == "text_mismatch"]
    assert [d.location.split(", ", 1)[1] for d in mismatches] == [
        "document '20722491', passage at offset 34, annotation '6'",
        "document '11587867', passage at offset 106, annotation '7'",
        "document '15863244', passage at offset 150, annotation '12'",
    ]
    assert "'d midline (MD) defec'" in mismatches[2].message


@pytest.mark.integration
@pytest.mark.parametrize("split", [row[0] for row in BC5CDR_SPLITS])
def test_real_bc5cdr_matches_pubtator(shared_data, split):
    bioc, pubtator = bc5cdr_files(shared_data, split)
    from_bioc = list(read_bioc_xml(bioc))
    from_pubtator = list(read_pubtator(pubtator))
    assert [d.doc_id for d in from_bioc] == [d.doc_id for d in from_pubtator]
    for document, expected in zip(from_bioc, from_pubtator):
        assert document.text == expected.text
        assert [(p.offset, p.text, p.type) for p in document.passages] == [
            (p.offset, p.text, p.type) for p in expected.passages
        ]
        assert [(r.type, r.arguments) for r in document.relations] == [
            (r.type, r.arguments) for r in expected.relations
        ]
        # PubTator lists a composite mention once, with the texts of its parts in a
        # seventh field; BioC adds each part as an IndividualMention annotation.
        whole = [m for m in document.mentions if not is_individual(m)]
        assert [(m.start, m.end, m.text, m.label, m.concept_id) for m in whole] == [
            (m.start, m.end, m.text, m.label, m.concept_id) for m in expected.mentions
        ]
    n_whole = sum(not is_individual(m) for d in from_bioc for m in d.mentions)
    assert n_whole == PUBTATOR_MENTIONS[split]


@pytest.mark.integration
def test_real_bc5cdr_same_entities_as_pubtator(shared_data):
    bioc, pubtator = bc5cdr_files(shared_data, "Development")
    nlp = spacy.blank("en")
    for document, expected in zip(read_bioc_xml(bioc), read_pubtator(pubtator)):
        doc = to_doc(nlp, document)
        expected_doc = to_doc(nlp, expected)
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
            (e.start_char, e.end_char, e.label_) for e in expected_doc.ents
        ], document.doc_id
        assert len(doc.spans[MENTIONS_KEY]) == len(document.mentions)


@pytest.mark.integration
@pytest.mark.parametrize("split", [row[0] for row in BC5CDR_SPLITS])
@pytest.mark.parametrize("lines", [False, True])
def test_real_bc5cdr_json_round_trip(shared_data, tmp_path, split, lines):
    bioc, _ = bc5cdr_files(shared_data, split)
    documents = list(read_bioc_xml(bioc))
    output = tmp_path / ("corpus.jsonl" if lines else "corpus.json")
    assert write_bioc_json(documents, output, lines=lines) == 500
    back = list(read_bioc_json(output))
    assert [without_locations(d) for d in back] == [without_locations(d) for d in documents]


@pytest.mark.integration
def test_real_pubtator3_exports(shared_data):
    folder = shared_data / "bioc_samples" / "pubtator3_biocjson"
    files = sorted(folder.glob("*.json"))
    if not files:
        pytest.skip(f"no PubTator3 exports in {folder}")
    defects = []
    documents = [d for path in files for d in read_bioc_json(path, defects=defects)]
    mentions = [m for d in documents for m in d.mentions]
    assert len(documents) == 8
    assert len(mentions) == 170
    assert Counter(m.label for m in mentions) == Counter(
        {"Gene": 103, "Species": 33, "Disease": 28, "Chemical": 3, "Variant": 2, "CellLine": 1}
    )
    assert sum(len(d.relations) for d in documents) == 34
    assert defects == []
    first = next(d for d in documents if d.doc_id == "24633240")
    assert first.other_fields["pmid"] == 24633240
    assert first.mentions[0].concept_id == "9606"
    assert first.passages[0].infons["article-id_pmc"] == "PMC4017589"


@pytest.mark.integration
@pytest.mark.parametrize("name", ["everything.xml", "everything_v2.xml"])
def test_real_bioc_reference_sample(shared_data, name):
    path = shared_data / "bioc_samples" / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    defects = []
    documents = list(read_bioc_xml(path, defects=defects))
    assert [d.text for d in documents] == [
        "abcdefghijklmnopqrstuvwxyz",
        " " * 27 + "abcdefg测试Non-ASCII",
    ]
    # The sample's annotations have no type infon, so none becomes a mention.
    assert Counter(d.kind for d in defects) == Counter({"missing_type": 5})
    assert [r.nodes for r in documents[0].relations] == [
        (("1", "role1"), ("2", "role2")),
        (("1", "role1"), ("2", "role2")),
    ]
