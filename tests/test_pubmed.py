"""The PubMed/MEDLINE citation XML reader."""

from __future__ import annotations

import gzip
import logging
import tracemalloc
from pathlib import Path

import pytest

from spacy_biobert.readers.iob import CorpusFormatError
from spacy_biobert.readers.pubmed import read_pubmed_xml

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">\n'
)


def article(pmid: str, title: str, abstract: str = "") -> str:
    """A PubmedArticle; ``abstract`` is the inner XML of <Abstract>, or "" for none."""
    abstract_xml = f"<Abstract>{abstract}</Abstract>" if abstract else ""
    return (
        "<PubmedArticle><MedlineCitation Status=\"MEDLINE\" Owner=\"NLM\">"
        f"<PMID Version=\"1\">{pmid}</PMID>"
        f"<Article><ArticleTitle>{title}</ArticleTitle>{abstract_xml}</Article>"
        "<CommentsCorrectionsList><CommentsCorrections RefType=\"CommentIn\">"
        "<PMID Version=\"1\">999</PMID></CommentsCorrections></CommentsCorrectionsList>"
        "</MedlineCitation><PubmedData/></PubmedArticle>\n"
    )


def article_set(*articles: str) -> str:
    return HEADER + "<PubmedArticleSet>\n" + "".join(articles) + "</PubmedArticleSet>\n"


def write_file(tmp_path: Path, text: str, name: str = "pubmed.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def read_all(path: Path):
    return list(read_pubmed_xml(path))


PLAIN = article(
    "101", "Cisplatin nephrotoxicity.", "<AbstractText>Renal damage was seen.</AbstractText>"
)
STRUCTURED = article(
    "102",
    "A trial.",
    '<AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Asthma is common.</AbstractText>'
    '<AbstractText Label="METHODS">We randomised.</AbstractText>'
    "<AbstractText>Unlabelled end.</AbstractText>",
)
NO_ABSTRACT = article("103", "Letter to the editor.")


# Reading


def test_read_title_and_abstract(tmp_path):
    [document] = read_all(write_file(tmp_path, article_set(PLAIN)))
    assert document.doc_id == "101"
    assert document.text == "Cisplatin nephrotoxicity. Renal damage was seen."
    title, abstract = document.passages
    assert (title.type, title.offset, title.text) == ("title", 0, "Cisplatin nephrotoxicity.")
    assert (abstract.type, abstract.offset) == ("abstract", len(title.text) + 1)
    assert document.text[abstract.offset :] == abstract.text
    assert document.mentions == []
    assert document.location.endswith("pubmed.xml, citation 1")


def test_read_structured_abstract_labels(tmp_path):
    [document] = read_all(write_file(tmp_path, article_set(STRUCTURED)))
    assert document.passages[1].text == (
        "BACKGROUND: Asthma is common. METHODS: We randomised. Unlabelled end."
    )


def test_read_citation_without_abstract(tmp_path):
    [document] = read_all(write_file(tmp_path, article_set(NO_ABSTRACT)))
    assert document.text == "Letter to the editor."
    assert [(p.type, p.offset) for p in document.passages] == [("title", 0)]


def test_read_empty_abstract_text(tmp_path):
    xml = article_set(article("104", "Title.", "<AbstractText/>"))
    [document] = read_all(write_file(tmp_path, xml))
    assert len(document.passages) == 1


def test_read_inline_markup_keeps_text(tmp_path):
    xml = article_set(
        article(
            "105",
            "Role of <i>BRCA1</i> in Ca<sup>2+</sup> flux",
            "<AbstractText>H<sub>2</sub>O and <b>NaCl</b> were <i>given</i>.</AbstractText>",
        )
    )
    [document] = read_all(write_file(tmp_path, xml))
    assert document.text == "Role of BRCA1 in Ca2+ flux H2O and NaCl were given."


def test_read_collapses_pretty_print_whitespace(tmp_path):
    xml = article_set(
        article(
            "106", "\n\t\tTitle\n\t\ton two lines.\n", "<AbstractText>\n\tA  b.\n</AbstractText>"
        )
    )
    [document] = read_all(write_file(tmp_path, xml))
    assert document.text == "Title on two lines. A b."


def test_read_keeps_character_references(tmp_path):
    xml = article_set(article("107", "&#946;-blockers for 6&#xa0;weeks &amp; more", ""))
    [document] = read_all(write_file(tmp_path, xml))
    assert document.text == "\u03b2-blockers for 6\u00a0weeks & more"


def test_read_pmid_not_from_comments(tmp_path):
    documents = read_all(write_file(tmp_path, article_set(PLAIN, STRUCTURED, NO_ABSTRACT)))
    assert [d.doc_id for d in documents] == ["101", "102", "103"]


def test_read_medline_citation_set(tmp_path):
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!DOCTYPE MedlineCitationSet PUBLIC "
        '"-//NLM//DTD Medline Citation, 1st January, 2016//EN"\n'
        '  "https://www.nlm.nih.gov/databases/dtd/nlmmedlinecitationset_160101.dtd">\n'
        "<MedlineCitationSet>\n"
        "<MedlineCitation Owner=\"NLM\"><PMID Version=\"1\">201</PMID>"
        "<Article><ArticleTitle>Old format.</ArticleTitle>"
        "<Abstract><AbstractText>Text.</AbstractText></Abstract></Article></MedlineCitation>\n"
        "<DeleteCitation><PMID Version=\"1\">202</PMID>"
        "<PMID Version=\"1\">203</PMID></DeleteCitation>\n"
        "</MedlineCitationSet>\n"
    )
    [document] = read_all(write_file(tmp_path, xml))
    assert document.doc_id == "201"
    assert document.text == "Old format. Text."


def test_read_gzip_by_content(tmp_path):
    data = gzip.compress(article_set(PLAIN, NO_ABSTRACT).encode("utf-8"))
    for name in ("pubmed.xml.gz", "no_suffix"):
        path = tmp_path / name
        path.write_bytes(data)
        assert [d.doc_id for d in read_all(path)] == ["101", "103"]


def test_read_skips_book_articles(tmp_path, caplog):
    book = "<PubmedBookArticle><BookDocument><PMID>301</PMID></BookDocument></PubmedBookArticle>\n"
    with caplog.at_level(logging.INFO):
        documents = read_all(write_file(tmp_path, article_set(PLAIN, book)))
    assert [d.doc_id for d in documents] == ["101"]
    assert "skipped 1 <PubmedBookArticle>" in caplog.text


def test_read_duplicate_pmid_kept(tmp_path):
    documents = read_all(write_file(tmp_path, article_set(PLAIN, PLAIN)))
    assert [d.doc_id for d in documents] == ["101", "101"]
    assert documents[1].location.endswith("citation 2")


def test_read_empty_set_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert read_all(write_file(tmp_path, article_set())) == []
    assert "no citations" in caplog.text


def test_read_does_not_fetch_external_entities(tmp_path):
    xml = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE PubmedArticleSet [<!ENTITY secret SYSTEM "file://{tmp_path}/secret.txt">]>\n'
        "<PubmedArticleSet>\n" + article("401", "&secret;") + "</PubmedArticleSet>\n"
    )
    (tmp_path / "secret.txt").write_text("do not read", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="undefined entity"):
        read_all(write_file(tmp_path, xml))


def test_memory_flat_on_30000_citations(tmp_path):
    path = tmp_path / "baseline.xml"
    abstract = "<AbstractText>" + "Word " * 40 + "</AbstractText>"
    with path.open("w", encoding="utf-8") as file:
        file.write(HEADER + "<PubmedArticleSet>\n")
        for number in range(30_000):
            file.write(article(str(number + 1), f"Title {number}.", abstract))
        file.write("</PubmedArticleSet>\n")
    assert path.stat().st_size > 10_000_000

    tracemalloc.start()
    try:
        count = sum(1 for _ in read_pubmed_xml(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    # The peak was about 135 kB with Python 3.11.7; without clearing it was 79 MB.
    assert peak < 1_000_000


# Bad input


def test_error_truncated_keeps_earlier_documents(tmp_path):
    text = article_set(PLAIN, STRUCTURED, NO_ABSTRACT)
    path = write_file(tmp_path, text[: text.index("<PubmedArticle>", text.index("102"))])
    reader = read_pubmed_xml(path)
    assert [next(reader).doc_id, next(reader).doc_id] == ["101", "102"]
    with pytest.raises(CorpusFormatError) as error:
        next(reader)
    message = str(error.value)
    assert f"{path}, line 6, column 0: invalid XML (no element found)" in message
    assert "after 2 citation(s)" in message


def test_error_truncated_gzip(tmp_path):
    data = gzip.compress(article_set(PLAIN, STRUCTURED).encode("utf-8"))
    path = tmp_path / "pubmed.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusFormatError, match=r"pubmed.xml.gz: the gzip stream is truncated"):
        read_all(path)


def test_error_malformed_xml_position(tmp_path):
    text = article_set(PLAIN).replace("<ArticleTitle>", "<ArticleTitle><i>", 1)
    expected = r"line 4, column \d+: invalid XML \(mismatched tag\)"
    with pytest.raises(CorpusFormatError, match=expected):
        read_all(write_file(tmp_path, text))


def test_error_not_pubmed_xml(tmp_path):
    text = '<?xml version="1.0"?><article><body><sec><p>Full text.</p></sec></body></article>'
    with pytest.raises(CorpusFormatError, match="root element is <article>") as error:
        read_all(write_file(tmp_path, text))
    assert "PMC full text (JATS)" in str(error.value)


def test_error_not_xml(tmp_path):
    path = write_file(tmp_path, "100|t|A PubTator title\n100|a|An abstract\n")
    with pytest.raises(CorpusFormatError, match=r"line 1, column 0: invalid XML \(syntax error\)"):
        read_all(path)


def test_error_empty_file(tmp_path):
    with pytest.raises(CorpusFormatError, match="invalid XML"):
        read_all(write_file(tmp_path, ""))


def test_error_missing_pmid(tmp_path):
    text = article_set(PLAIN, article("", "No ID."))
    expected = r"pubmed.xml, citation 2: .*no MedlineCitation/PMID"
    with pytest.raises(CorpusFormatError, match=expected):
        read_all(write_file(tmp_path, text))


def test_error_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_all(tmp_path / "absent.xml")


# Real samples

REAL_FILES = [
    # name, citations, citations with an abstract, first PMID
    ("medline16n0902.xml.gz", 604, 526, "17942999"),
    ("test_current_medline.xml.gz", 4, 3, "36400559"),
    ("pubmed-29768149.xml", 1, 1, "29768149"),
]


@pytest.mark.integration
@pytest.mark.parametrize("name, n_citations, n_abstracts, first_pmid", REAL_FILES)
def test_real_pubmed_samples(shared_data, name, n_citations, n_abstracts, first_pmid):
    path = shared_data / "pubmed_xml" / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    documents = read_all(path)
    assert len(documents) == n_citations
    assert sum(len(d.passages) == 2 for d in documents) == n_abstracts
    assert documents[0].doc_id == first_pmid
    assert len({d.doc_id for d in documents}) == n_citations
    for document in documents:
        assert document.text.startswith(document.passages[0].text)
        assert all(document.text[p.offset :].startswith(p.text) for p in document.passages)
        assert "\n" not in document.text
