"""The PubTator reader and writer, and the mapping of annotated documents to spaCy Docs."""

from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_biobert.readers.iob import CorpusFormatError
from spacy_biobert.readers.mentions import (
    DOC_ID_EXTENSION,
    MENTION_SOURCES_EXTENSION,
    MENTIONS_KEY,
    PASSAGES_EXTENSION,
    RELATIONS_EXTENSION,
    AnnotatedDocument,
    Mention,
    Passage,
    from_doc,
    to_doc,
)
from spacy_biobert.readers.pubtator import format_pubtator, read_pubtator, write_pubtator

TITLE = "Hereditary breast and ovarian cancer in BRCA1 carriers."
ABSTRACT = "Breast cancer risk was found with hereditary-cancer genes."

# Offsets index TITLE + " " + ABSTRACT; the title has 55 characters, the abstract starts at 56.
BLOCK = (
    f"100|t|{TITLE}\n"
    f"100|a|{ABSTRACT}\n"
    "100\t0\t36\tHereditary breast and ovarian cancer\tCompositeMention\tD061325|D010051\n"
    "100\t11\t17\tbreast\tModifier\t D001943\n"
    "100\t22\t36\tovarian cancer\tSpecificDisease\tOMIM:1234+D55\n"
    "100\t40\t45\tBRCA1\tGene\t672\n"
    "100\t56\t69\tBreast cancer\tDisease\tMESH:D001943\tBreast cancer\n"
    "100\tCID\tD001\tD002\n"
)
SECOND_BLOCK = (
    "200|t|Cisplatin nephrotoxicity.\n"
    "200|a|\n"
    "200\t0\t9\tCisplatin\tChemical\tD002945\t\n"
    "200\t10\t24\tnephrotoxicity\tDisease\t-1\n"
)


def write_file(tmp_path: Path, text: str, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def read_all(path: Path, **options):
    return list(read_pubtator(path, **options))


def read_error(tmp_path: Path, text: str, **options) -> str:
    path = write_file(tmp_path, text)
    with pytest.raises(CorpusFormatError) as error:
        read_all(path, **options)
    return str(error.value)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


# Reading


def test_read_document_fields(tmp_path):
    path = write_file(tmp_path, BLOCK + "\n" + SECOND_BLOCK)
    documents = read_all(path)
    assert [document.doc_id for document in documents] == ["100", "200"]
    first = documents[0]
    assert first.text == f"{TITLE} {ABSTRACT}"
    assert first.location == f"{path}, line 1"
    assert [(p.offset, p.text, p.type) for p in first.passages] == [
        (0, TITLE, "title"),
        (56, ABSTRACT, "abstract"),
    ]
    assert len(first.mentions) == 5
    breast = first.mentions[1]
    assert (breast.start, breast.end, breast.text, breast.label) == (11, 17, "breast", "Modifier")
    assert breast.location == f"{path}, line 4"


def test_read_concept_ids_verbatim(tmp_path):
    documents = read_all(write_file(tmp_path, BLOCK + "\n" + SECOND_BLOCK))
    concept_ids = [m.concept_id for d in documents for m in d.mentions]
    assert concept_ids == [
        "D061325|D010051",
        " D001943",
        "OMIM:1234+D55",
        "672",
        "MESH:D001943",
        "D002945",
        "-1",
    ]
    assert documents[0].mentions[4].extra == ("Breast cancer",)
    assert documents[1].mentions[0].extra == ("",)
    assert documents[1].mentions[1].extra == ()


def test_read_relations(tmp_path):
    documents = read_all(write_file(tmp_path, BLOCK))
    relations = documents[0].relations
    assert len(relations) == 1
    assert relations[0].type == "CID"
    assert relations[0].arguments == ("D001", "D002")
    assert relations[0].location.endswith("line 8")


def test_read_five_field_relation(tmp_path):
    text = BLOCK + "100\tAssociation\t672\tD001943\tNovel\n"
    relations = read_all(write_file(tmp_path, text))[0].relations
    assert relations[1].type == "Association"
    assert relations[1].arguments == ("672", "D001943", "Novel")


def test_read_empty_abstract(tmp_path):
    documents = read_all(write_file(tmp_path, SECOND_BLOCK))
    assert documents[0].text == "Cisplatin nephrotoxicity. "
    assert documents[0].passages[1].offset == 26
    assert documents[0].passages[1].text == ""


def test_read_crlf_and_byte_order_mark(tmp_path):
    plain = read_all(write_file(tmp_path, BLOCK + "\n" + SECOND_BLOCK, "plain.txt"))
    windows = "\ufeff" + (BLOCK + "\n" + SECOND_BLOCK).replace("\n", "\r\n")
    defects = []
    converted = read_all(write_file(tmp_path, windows, "windows.txt"), defects=defects)
    assert [format_pubtator(d) for d in converted] == [format_pubtator(d) for d in plain]
    assert converted[0].text == plain[0].text
    assert defects == []


def test_read_extra_blank_lines(tmp_path):
    path = write_file(tmp_path, "\n\n" + BLOCK + "\n\n\n" + SECOND_BLOCK + "\n\n")
    assert [d.doc_id for d in read_all(path)] == ["100", "200"]


def test_read_missing_blank_line_warns(tmp_path, caplog):
    defects = []
    with caplog.at_level(logging.WARNING):
        documents = read_all(write_file(tmp_path, BLOCK + SECOND_BLOCK), defects=defects)
    assert [d.doc_id for d in documents] == ["100", "200"]
    assert [d.kind for d in defects] == ["missing_blank_line"]
    assert defects[0].location.endswith("corpus.txt, line 9")
    assert "blank line" in caplog.text


# Bad input


def test_error_offsets_outside_text(tmp_path):
    message = read_error(tmp_path, BLOCK.replace("100\t56\t69\t", "100\t56\t200\t"))
    assert "corpus.txt, line 7" in message
    assert "fields 2-3 (start, end)" in message
    assert "114 characters" in message


def test_error_negative_offset(tmp_path):
    message = read_error(tmp_path, BLOCK.replace("100\t11\t17\t", "100\t-1\t17\t"))
    assert "line 4" in message
    assert "outside the document text" in message


def test_error_empty_span(tmp_path):
    message = read_error(tmp_path, BLOCK.replace("100\t11\t17\t", "100\t17\t17\t"))
    assert "line 4, fields 2-3 (start, end)" in message
    assert "empty or reversed" in message


@pytest.mark.parametrize(
    "line, field",
    [
        ("100\t1a\t17\tbreast\tModifier\tD001943\n", "field 2 (start): '1a'"),
        ("100\t11\tseventeen\tbreast\tModifier\tD001943\n", "field 3 (end): 'seventeen'"),
        ("100\t11.0\t17\tbreast\tModifier\tD001943\n", "field 2 (start): '11.0'"),
        ("100\t 11\t17\tbreast\tModifier\tD001943\n", "field 2 (start): ' 11'"),
    ],
)
def test_error_non_integer_offset(tmp_path, line, field):
    message = read_error(tmp_path, f"100|t|{TITLE}\n100|a|{ABSTRACT}\n{line}")
    assert "corpus.txt, line 3" in message
    assert field in message
    assert "not an integer" in message


def test_error_truncated_mention_line(tmp_path):
    message = read_error(tmp_path, f"100|t|{TITLE}\n100|a|{ABSTRACT}\n100\t11\t17\tbre")
    assert "corpus.txt, line 3" in message
    assert "4 tab-separated field(s), expected 6 or more" in message
    assert "truncated" in message


def test_error_five_field_mention_line(tmp_path):
    line = "100\t1a\t17\tbreast\tModifier\n"
    message = read_error(tmp_path, f"100|t|{TITLE}\n100|a|{ABSTRACT}\n{line}")
    assert "corpus.txt, line 3" in message
    assert "5 tab-separated field(s)" in message


def test_error_title_without_abstract_at_end(tmp_path):
    message = read_error(tmp_path, BLOCK + "\n300|t|A title and nothing else.\n")
    assert "corpus.txt, line 10" in message
    assert "'300'" in message
    assert "no abstract line before the end of the file" in message
    assert "truncated" in message


def test_error_title_without_abstract_before_blank(tmp_path):
    message = read_error(tmp_path, "300|t|A title.\n\n" + BLOCK)
    assert "corpus.txt, line 1" in message
    assert "no abstract line before the blank line" in message


def test_error_title_without_abstract_before_title(tmp_path):
    message = read_error(tmp_path, "300|t|A title.\n" + BLOCK)
    assert "corpus.txt, line 1" in message
    assert "'300|a|abstract'" in message


def test_error_mention_before_abstract(tmp_path):
    message = read_error(tmp_path, f"100|t|{TITLE}\n100\t0\t10\tHereditary\tDisease\tD1\n")
    assert "corpus.txt, line 2" in message
    assert "expected the abstract line '100|a|abstract'" in message


def test_error_mention_before_title(tmp_path):
    message = read_error(tmp_path, "100\t0\t10\tHereditary\tDisease\tD1\n" + BLOCK)
    assert "corpus.txt, line 1" in message
    assert "expected a title line" in message


def test_error_mention_of_other_document(tmp_path):
    message = read_error(tmp_path, BLOCK + "999\t0\t10\tHereditary\tDisease\tD1\n")
    assert "corpus.txt, line 9, field 1 (document ID)" in message
    assert "'999'" in message


def test_error_abstract_of_other_document(tmp_path):
    message = read_error(tmp_path, f"100|t|{TITLE}\n999|a|{ABSTRACT}\n")
    assert "corpus.txt, line 2, field 1 (document ID)" in message


def test_error_second_abstract(tmp_path):
    message = read_error(tmp_path, BLOCK + f"100|a|{ABSTRACT}\n")
    assert "corpus.txt, line 9" in message
    assert "second abstract line" in message


def test_error_abstract_without_title(tmp_path):
    message = read_error(tmp_path, f"100|a|{ABSTRACT}\n")
    assert "corpus.txt, line 1" in message
    assert "without a title line" in message


def test_error_empty_type(tmp_path):
    message = read_error(tmp_path, BLOCK.replace("\tModifier\t", "\t\t"))
    assert "corpus.txt, line 4, field 5 (type)" in message


def test_error_empty_relation_type(tmp_path):
    message = read_error(tmp_path, BLOCK.replace("100\tCID\t", "100\t\t"))
    assert "corpus.txt, line 8" in message
    assert "the type starting with a letter" in message


def test_error_unknown_line(tmp_path):
    message = read_error(tmp_path, BLOCK + "just some words\n")
    assert "corpus.txt, line 9" in message
    assert "1 tab-separated field(s)" in message


def test_error_invalid_utf8(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(BLOCK.encode("utf-8") + b"\n200|t|Caf\xe9.\n200|a|\n")
    with pytest.raises(CorpusFormatError, match=r"corpus\.txt, line 10: invalid UTF-8 at byte 10"):
        read_all(path)


def test_error_empty_file(tmp_path):
    message = read_error(tmp_path, "\n\n")
    assert "no documents found" in message


def test_error_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_all(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    "options",
    [{"on_text_mismatch": "fix"}, {"on_duplicate_id": "merge"}, {"search_window": -1}],
)
def test_error_invalid_option(tmp_path, options):
    with pytest.raises(ValueError, match="Invalid"):
        read_all(write_file(tmp_path, BLOCK), **options)


# Mention text that differs from the text at its offsets

# "breast" moved to the word "cancer" (30-36) while the offsets stay at 11-17.
MISMATCH_BLOCK = BLOCK.replace("100\t11\t17\tbreast\t", "100\t30\t36\tbreast\t")


def test_mismatch_keep_is_default(tmp_path, caplog):
    defects = []
    with caplog.at_level(logging.WARNING):
        documents = read_all(write_file(tmp_path, MISMATCH_BLOCK), defects=defects)
    mention = documents[0].mentions[1]
    assert (mention.start, mention.end, mention.text) == (30, 36, "breast")
    assert [d.kind for d in defects] == ["text_mismatch"]
    assert defects[0].location.endswith("corpus.txt, line 4")
    assert "corpus.txt, line 4: field 4 (mention text): 'breast'" in caplog.text
    assert "'cancer'" in caplog.text
    assert "on_text_mismatch='search'" in caplog.text


def test_mismatch_search_finds_nearby(tmp_path):
    defects = []
    path = write_file(tmp_path, MISMATCH_BLOCK)
    documents = read_all(path, on_text_mismatch="search", defects=defects)
    mention = documents[0].mentions[1]
    assert (mention.start, mention.end, mention.text) == (11, 17, "breast")
    assert "moved the mention to 11-17" in defects[0].message


def test_mismatch_search_prefers_nearest(tmp_path):
    # "cancer" occurs at 30, 63 and 101; offsets 60-66 are nearest to 63.
    text = BLOCK.replace("100\t11\t17\tbreast\t", "100\t60\t66\tcancer\t")
    documents = read_all(write_file(tmp_path, text), on_text_mismatch="search")
    assert (documents[0].mentions[1].start, documents[0].mentions[1].end) == (63, 69)


def test_mismatch_search_strips_whitespace(tmp_path):
    # The shape of NCBI-disease train PMID 10923035: right offsets, trailing spaces in the text.
    text = BLOCK.replace("100\t11\t17\tbreast\t", "100\t11\t17\tbreast  \t")
    defects = []
    documents = read_all(write_file(tmp_path, text), on_text_mismatch="search", defects=defects)
    mention = documents[0].mentions[1]
    assert (mention.start, mention.end, mention.text) == (11, 17, "breast")
    assert len(defects) == 1


def test_mismatch_search_skips_when_not_found(tmp_path):
    text = BLOCK.replace("100\t11\t17\tbreast\t", "100\t11\t17\tleukemia\t")
    defects = []
    documents = read_all(write_file(tmp_path, text), on_text_mismatch="search", defects=defects)
    assert [m.text for m in documents[0].mentions].count("leukemia") == 0
    assert len(documents[0].mentions) == 4
    assert "not found within 100 characters" in defects[0].message


def test_mismatch_search_respects_window(tmp_path):
    # "genes" is at 108, more than 5 characters from 11.
    text = BLOCK.replace("100\t11\t17\tbreast\t", "100\t11\t16\tgenes\t")
    documents = read_all(write_file(tmp_path, text), on_text_mismatch="search", search_window=5)
    assert len(documents[0].mentions) == 4


def test_mismatch_skip(tmp_path):
    defects = []
    path = write_file(tmp_path, MISMATCH_BLOCK)
    documents = read_all(path, on_text_mismatch="skip", defects=defects)
    assert len(documents[0].mentions) == 4
    assert "left out (on_text_mismatch='skip')" in defects[0].message


def test_mismatch_error(tmp_path):
    message = read_error(tmp_path, MISMATCH_BLOCK, on_text_mismatch="error")
    assert "corpus.txt, line 4, field 4 (mention text)" in message
    assert "'breast'" in message


def test_mismatch_warnings_rate_limited(tmp_path, caplog):
    lines = [f"100|t|{TITLE}", f"100|a|{ABSTRACT}"]
    lines += ["100\t0\t10\tWrong\tDisease\tD1"] * 12
    defects = []
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.pubtator"):
        read_all(write_file(tmp_path, "\n".join(lines) + "\n"), defects=defects)
    assert len(defects) == 12
    mismatch_records = [r for r in caplog.records if "field 4 (mention text)" in r.getMessage()]
    assert len(mismatch_records) == 10
    assert "12 defects of kind 'text_mismatch' in all" in caplog.text


# Duplicate document IDs


def test_duplicate_id_kept_by_default(tmp_path):
    defects = []
    path = write_file(tmp_path, BLOCK + "\n" + SECOND_BLOCK + "\n" + BLOCK)
    documents = read_all(path, defects=defects)
    assert [d.doc_id for d in documents] == ["100", "200", "100"]
    assert [d.kind for d in defects] == ["duplicate_id"]
    assert defects[0].location.endswith("corpus.txt, line 15")
    assert "line 1" in defects[0].message


def test_duplicate_id_skipped(tmp_path):
    defects = []
    path = write_file(tmp_path, BLOCK + "\n" + SECOND_BLOCK + "\n" + BLOCK)
    documents = read_all(path, on_duplicate_id="skip", defects=defects)
    assert [d.doc_id for d in documents] == ["100", "200"]
    assert "left out" in defects[0].message


# Docs


def test_to_doc_keeps_all_mentions(tmp_path, nlp):
    document = read_all(write_file(tmp_path, BLOCK))[0]
    doc = to_doc(nlp, document)
    spans = doc.spans[MENTIONS_KEY]
    assert [(s.start_char, s.end_char, s.label_) for s in spans] == [
        (0, 36, "CompositeMention"),
        (11, 17, "Modifier"),
        (22, 36, "SpecificDisease"),
        (40, 45, "Gene"),
        (56, 69, "Disease"),
    ]


def test_to_doc_ents_longest_first(tmp_path, nlp, caplog):
    document = read_all(write_file(tmp_path, BLOCK))[0]
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.mentions"):
        doc = to_doc(nlp, document)
    assert [(e.start_char, e.end_char) for e in doc.ents] == [(0, 36), (40, 45), (56, 69)]
    assert "Document '100': 2 of 5 mentions overlap" in caplog.text


def test_to_doc_ents_tie_break(nlp):
    text = "ovarian cancer in carriers"
    document = AnnotatedDocument(
        doc_id="1",
        text=text,
        mentions=[
            Mention(8, 17, "cancer in", "Disease"),  # two tokens, starts later
            Mention(0, 14, "ovarian cancer", "Disease"),  # two tokens, starts first
            Mention(18, 26, "carriers", "Person"),
            Mention(18, 26, "carriers", "Group"),  # same span: the first in the list wins
        ],
    )
    defects = []
    doc = to_doc(nlp, document, defects=defects)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("ovarian cancer", "Disease"),
        ("carriers", "Person"),
    ]
    assert len(doc.spans[MENTIONS_KEY]) == 4
    assert [d.kind for d in defects] == ["overlapping_mentions"]


def test_to_doc_kb_ids(tmp_path, nlp):
    document = read_all(write_file(tmp_path, BLOCK))[0]
    doc = to_doc(nlp, document)
    assert [s.kb_id_ for s in doc.spans[MENTIONS_KEY]] == [
        "D061325|D010051",
        " D001943",
        "OMIM:1234+D55",
        "672",
        "MESH:D001943",
    ]
    assert [e.kb_id_ for e in doc.ents] == ["D061325|D010051", "672", "MESH:D001943"]


def test_to_doc_extensions(tmp_path, nlp):
    document = read_all(write_file(tmp_path, BLOCK))[0]
    doc = to_doc(nlp, document)
    assert doc._.get(DOC_ID_EXTENSION) == "100"
    assert doc._.get(RELATIONS_EXTENSION) == [{"type": "CID", "arguments": ["D001", "D002"]}]
    assert doc._.get(PASSAGES_EXTENSION) == [
        {"type": "title", "offset": 0, "length": 55},
        {"type": "abstract", "offset": 56, "length": 58},
    ]
    # Only the mention with a seventh field needs a source record.
    assert doc._.get(MENTION_SOURCES_EXTENSION) == {
        "4": {
            "span": [56, 69],
            "start": 56,
            "end": 69,
            "text": "Breast cancer",
            "extra": ["Breast cancer"],
        }
    }


def test_to_doc_with_tokenizer(tmp_path, nlp):
    document = read_all(write_file(tmp_path, BLOCK))[0]
    doc = to_doc(nlp.tokenizer, document)
    assert len(doc.spans[MENTIONS_KEY]) == 5


def test_to_doc_misaligned_mention(nlp, caplog):
    text = "BRCA1 carriers"
    document = AnnotatedDocument(
        doc_id="7", text=text, mentions=[Mention(0, 4, "BRCA", "Gene", "672")]
    )
    defects = []
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.mentions"):
        doc = to_doc(nlp, document, defects=defects)
    span = doc.spans[MENTIONS_KEY][0]
    assert (span.start_char, span.end_char) == (0, 5)
    assert [(e.start_char, e.end_char) for e in doc.ents] == [(0, 5)]
    assert "Document '7': 1 mention(s) do not fall on token boundaries" in caplog.text
    assert "0-4 'BRCA' -> 0-5 'BRCA1'" in caplog.text
    assert [d.kind for d in defects] == ["misaligned_mention"]
    restored = from_doc(doc, spans_key=MENTIONS_KEY).mentions[0]
    assert (restored.start, restored.end, restored.text) == (0, 4, "BRCA")


def test_to_doc_whitespace_mention(nlp, caplog):
    document = AnnotatedDocument(
        doc_id="8",
        text="BRCA1  carriers",
        mentions=[Mention(6, 7, " ", "Gene"), Mention(0, 5, "BRCA1", "Gene")],
    )
    defects = []
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.readers.mentions"):
        doc = to_doc(nlp, document, defects=defects)
    assert [s.text for s in doc.spans[MENTIONS_KEY]] == ["BRCA1"]
    assert "Document '8': 1 mention(s) cover no token" in caplog.text
    assert [d.kind for d in defects] == ["mention_without_tokens"]


def test_to_doc_keeps_mismatched_text(tmp_path, nlp):
    document = read_all(write_file(tmp_path, MISMATCH_BLOCK))[0]
    doc = to_doc(nlp, document)
    assert doc.spans[MENTIONS_KEY][1].text == "cancer"
    assert from_doc(doc, spans_key=MENTIONS_KEY).mentions[1].text == "breast"


def test_from_doc_reads_ents_by_default(tmp_path, nlp):
    document = read_all(write_file(tmp_path, BLOCK))[0]
    doc = to_doc(nlp, document)
    result = from_doc(doc)
    assert [(m.start, m.end, m.label, m.concept_id) for m in result.mentions] == [
        (0, 36, "CompositeMention", "D061325|D010051"),
        (40, 45, "Gene", "672"),
        (56, 69, "Disease", "MESH:D001943"),
    ]
    # Ents carry no source records, so the seventh field is not restored.
    assert result.mentions[2].extra == ()
    assert result.doc_id == "100"
    assert [r.arguments for r in result.relations] == [("D001", "D002")]


def test_from_doc_unknown_spans_key(tmp_path, nlp):
    doc = to_doc(nlp, read_all(write_file(tmp_path, BLOCK))[0])
    with pytest.raises(KeyError, match="no span group 'sc'"):
        from_doc(doc, spans_key="sc")


def test_from_doc_plain_doc(nlp):
    doc = nlp("Breast cancer")
    result = from_doc(doc, doc_id="42")
    assert result.doc_id == "42"
    assert result.mentions == []
    assert [(p.offset, p.text) for p in result.passages] == [(0, "Breast cancer")]
    assert format_pubtator(result) == "42|t|Breast cancer\n42|a|\n"


def test_from_doc_ignores_changed_span(tmp_path, nlp):
    doc = to_doc(nlp, read_all(write_file(tmp_path, BLOCK))[0])
    spans = list(doc.spans[MENTIONS_KEY])
    # Move the span that has a source record; its record no longer applies.
    spans[4] = doc.char_span(56, 62, label="Disease", span_id=spans[4].id)
    doc.spans[MENTIONS_KEY] = spans
    mention = from_doc(doc, spans_key=MENTIONS_KEY).mentions[4]
    assert (mention.start, mention.end, mention.text, mention.extra) == (56, 62, "Breast", ())


def test_docbin_keeps_extensions(tmp_path):
    nlp = spacy.blank("en")
    source = BLOCK + "\n" + SECOND_BLOCK + "\n" + MISMATCH_BLOCK.replace("100", "300")
    documents = read_all(write_file(tmp_path, source))
    doc_bin = DocBin(store_user_data=True)
    for document in documents:
        doc_bin.add(to_doc(nlp, document))
    fresh = spacy.blank("en")
    docs = list(DocBin().from_bytes(doc_bin.to_bytes()).get_docs(fresh.vocab))
    assert [doc._.get(DOC_ID_EXTENSION) for doc in docs] == ["100", "200", "300"]
    # msgpack, which DocBin uses, returns lists as tuples.
    relations = docs[0]._.get(RELATIONS_EXTENSION)
    assert [(r["type"], tuple(r["arguments"])) for r in relations] == [("CID", ("D001", "D002"))]
    assert [s.kb_id_ for s in docs[0].spans[MENTIONS_KEY]][1] == " D001943"
    written = [format_pubtator(from_doc(doc, spans_key=MENTIONS_KEY)) for doc in docs]
    assert written == [format_pubtator(document) for document in documents]
    assert written[1] == SECOND_BLOCK


# Writing


def test_write_round_trip_file(tmp_path, nlp):
    source = BLOCK + "\n" + SECOND_BLOCK + "\n"
    documents = read_all(write_file(tmp_path, source))
    docs = [to_doc(nlp, document) for document in documents]
    output = tmp_path / "out" / "written.txt"
    count = write_pubtator((from_doc(doc, spans_key=MENTIONS_KEY) for doc in docs), output)
    assert count == 2
    assert output.read_bytes() == source.encode("utf-8")


def test_write_stream(tmp_path):
    documents = read_all(write_file(tmp_path, SECOND_BLOCK))
    stream = io.StringIO()
    assert write_pubtator(documents, stream) == 1
    assert stream.getvalue() == SECOND_BLOCK + "\n"


def test_write_failure_keeps_old_file(tmp_path):
    output = write_file(tmp_path, "old contents\n", "out.txt")
    bad = AnnotatedDocument(doc_id="", text="text")
    with pytest.raises(ValueError, match="Invalid document ID"):
        write_pubtator([bad], output)
    assert output.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize(
    "document, match",
    [
        (AnnotatedDocument("1|2", "text"), "Invalid document ID"),
        (AnnotatedDocument("1", "two\nlines"), "line break"),
        (
            AnnotatedDocument("1", "a b", mentions=[Mention(0, 1, "a", "Dis\tease")]),
            "contains a tab",
        ),
        (
            AnnotatedDocument("1", "a b", mentions=[Mention(0, 9, "a", "Disease")]),
            "outside the text",
        ),
        (
            AnnotatedDocument("1", "a b", passages=[Passage(0, "a"), Passage(3, "b")]),
            "offsets 0 and 3",
        ),
        (
            AnnotatedDocument(
                "1", "a b c", passages=[Passage(0, "a"), Passage(2, "b"), Passage(4, "c")]
            ),
            "3 passages",
        ),
    ],
)
def test_write_invalid_document(document, match):
    with pytest.raises(ValueError, match=match):
        format_pubtator(document)


# The real corpora

NCBI = "ncbi_disease/pubtator"
BC5CDR = "bc5cdr/pubtator"
REAL_FILES = [
    # file, documents, mentions, CID relations
    (f"{NCBI}/NCBItrainset_corpus.txt", 593, 5145, 0),
    (f"{NCBI}/NCBIdevelopset_corpus.txt", 100, 787, 0),
    (f"{NCBI}/NCBItestset_corpus.txt", 100, 960, 0),
    (f"{BC5CDR}/CDR_TrainingSet.PubTator.txt", 500, 9385, 1038),
    (f"{BC5CDR}/CDR_DevelopmentSet.PubTator.txt", 500, 9591, 1012),
    (f"{BC5CDR}/CDR_TestSet.PubTator.txt", 500, 9809, 1066),
]


def find_mention(documents, doc_id: str, start: int) -> Mention:
    document = next(d for d in documents if d.doc_id == doc_id)
    return next(m for m in document.mentions if m.start == start)


def source_blocks(path: Path):
    """Split a PubTator file into document blocks, each ending in one newline."""
    text = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    return [block.strip("\n") + "\n" for block in text.split("\n\n") if block.strip("\n")]


@pytest.mark.integration
@pytest.mark.parametrize("name, n_documents, n_mentions, n_relations", REAL_FILES)
def test_real_corpus_round_trip(shared_data, name, n_documents, n_mentions, n_relations):
    path = shared_data / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    nlp = spacy.blank("en")
    documents = read_all(path)
    assert len(documents) == n_documents
    assert sum(len(d.mentions) for d in documents) == n_mentions
    assert sum(len(d.relations) for d in documents) == n_relations
    assert all(r.type == "CID" for d in documents for r in d.relations)

    doc_bin = DocBin(store_user_data=True)
    for document in documents:
        doc_bin.add(to_doc(nlp, document))
    docs = DocBin().from_bytes(doc_bin.to_bytes()).get_docs(spacy.blank("en").vocab)
    written = [format_pubtator(from_doc(doc, spans_key=MENTIONS_KEY)) for doc in docs]

    blocks = source_blocks(path)
    assert len(blocks) == n_documents
    differing = [i for i, (a, b) in enumerate(zip(written, blocks)) if a != b]
    assert differing == []


@pytest.mark.integration
def test_real_ncbi_train_defects(shared_data):
    path = shared_data / NCBI / "NCBItrainset_corpus.txt"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    defects = []
    documents = read_all(path, defects=defects)
    assert [(d.kind, d.location) for d in defects] == [
        ("text_mismatch", f"{path}, line 3249"),
        ("duplicate_id", f"{path}, line 4557"),
    ]
    assert "'8528200'" in defects[1].message
    assert "line 3811" in defects[1].message
    mention = find_mention(documents, "10923035", 711)
    assert mention.text == 'generalized epilepsy and febrile seizures " plus "  '
    assert mention.end == 761
    assert mention.concept_id == "D004829+D003294"


@pytest.mark.integration
def test_real_ncbi_train_search_repair(shared_data):
    path = shared_data / NCBI / "NCBItrainset_corpus.txt"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    documents = read_all(path, on_text_mismatch="search", on_duplicate_id="skip")
    assert len(documents) == 592
    mention = find_mention(documents, "10923035", 711)
    assert mention.end == 761
    assert mention.text == 'generalized epilepsy and febrile seizures " plus "'


@pytest.mark.integration
@pytest.mark.parametrize("name", [row[0] for row in REAL_FILES[1:]])
def test_real_corpus_without_defects(shared_data, name):
    path = shared_data / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    defects = []
    read_all(path, defects=defects)
    assert Counter(d.kind for d in defects) == Counter()
