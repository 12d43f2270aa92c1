"""PubMed/MEDLINE citation XML: read titles and abstracts into AnnotatedDocuments.

Reads the XML that PubMed's baseline and update files and E-utilities' efetch
return: a ``PubmedArticleSet`` of ``PubmedArticle`` records, or the older
``MedlineCitationSet`` of bare ``MedlineCitation`` records (DTDs up to 2016),
plain or gzip-compressed (recognised by its first bytes, whatever the file
name).  One document per citation, without mentions:

- ``doc_id`` is the citation's PMID (``MedlineCitation/PMID``).
- ``text`` is the title, a space and the abstract, with passages ``title`` at 0
  and ``abstract`` at len(title) + 1, the layout of PubTator files.  A
  citation without an abstract has the title as its text and one passage.
- Structured abstracts are written ``LABEL: text`` per ``AbstractText``, using
  its ``Label`` attribute, and the sections are joined by one space:
  ``BACKGROUND: ... METHODS: ...``.  ``OtherAbstract`` (abstracts in other
  languages or by other publishers) is not read.
- Inline markup in titles and abstracts (``<i>``, ``<sup>``, ``<sub>``,
  ``<b>``, MathML) is dropped and its text kept.  Runs of spaces, tabs and line
  breaks, which pretty-printed files put inside elements, become one space, and
  each passage is stripped.  Other characters, no-break spaces included, are
  kept as they are.

``DeleteCitation`` blocks (lists of PMIDs to delete) and ``PubmedBookArticle``
records are skipped, and their count is logged.

The file is parsed with :func:`xml.etree.ElementTree.iterparse`, and each
record is cleared once read, so memory stays at about one citation whatever
the file size.  ElementTree never fetches DTDs or external entities: the
remote DTD named in PubMed's DOCTYPE is not read, and a reference to an
external entity is an "undefined entity" error.  Entities declared inside the
file itself are expanded, so the protection against nested entity expansion
is that of the expat library in use (``pyexpat.EXPAT_VERSION``).
"""

from __future__ import annotations

import gzip
import logging
import re
import xml.etree.ElementTree as ElementTree
import zlib
from collections import Counter
from pathlib import Path
from typing import IO, Iterator, Union

from .iob import CorpusFormatError
from .mentions import AnnotatedDocument, Passage

logger = logging.getLogger(__name__)

ROOT_TAGS = ("PubmedArticleSet", "MedlineCitationSet")
RECORD_TAGS = ("PubmedArticle", "MedlineCitation")
# Top-level elements that are not citations, counted and logged at INFO level.
SKIPPED_TAGS = ("DeleteCitation", "PubmedBookArticle")
GZIP_MAGIC = b"\x1f\x8b"
XML_WHITESPACE = re.compile(r"[ \t\r\n]+")


def read_pubmed_xml(path: Union[str, Path]) -> Iterator[AnnotatedDocument]:
    """Yield one document per citation of a PubMed/MEDLINE XML file (``.xml`` or ``.xml.gz``).

    Citations are yielded in file order, repeated PMIDs included: the reader
    keeps no set of PMIDs, so that its memory does not grow with the file.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        CorpusFormatError: for a file that is not well-formed XML, a
            truncated or corrupt gzip stream, a root element other than
            ``PubmedArticleSet`` or ``MedlineCitationSet``, and a citation
            without a PMID.  The message names the file and, for invalid XML,
            the line and column.  Documents yielded before the error stay valid.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PubMed XML file not found: {path}")
    with _open_xml(path) as stream:
        yield from _read_records(path, stream)


def _open_xml(path: Path) -> IO[bytes]:
    with path.open("rb") as file:
        compressed = file.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


def _read_records(path: Path, stream: IO[bytes]) -> Iterator[AnnotatedDocument]:
    root = None
    depth = 0
    n_citations = 0
    skipped: Counter = Counter()
    events = ElementTree.iterparse(stream, events=("start", "end"))
    try:
        for event, element in events:
            if event == "start":
                depth += 1
                if root is None:
                    _check_root(path, element)
                    root = element
                continue
            depth -= 1
            if depth != 1:
                continue
            # A child of the root is complete: read it, then free it and everything before it.
            if element.tag in RECORD_TAGS:
                n_citations += 1
                document = _read_citation(path, element, n_citations)
                root.clear()
                yield document
            else:
                skipped[element.tag] += 1
                root.clear()
    except ElementTree.ParseError as error:
        line, column = error.position
        reason = str(error).rsplit(": line", 1)[0]
        raise CorpusFormatError(
            f"{path}, line {line}, column {column}: invalid XML ({reason}) after "
            f"{n_citations} citation(s). Is the file truncated, or not XML?"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CorpusFormatError(
            f"{path}: the gzip stream is truncated or corrupt after {n_citations} "
            f"citation(s) ({error}). Download the file again."
        ) from None
    _log_summary(path, n_citations, skipped)


def _check_root(path: Path, element: ElementTree.Element) -> None:
    if element.tag not in ROOT_TAGS:
        hint = ""
        if element.tag == "article":
            hint = " This looks like PMC full text (JATS), which this reader does not read."
        raise CorpusFormatError(
            f"{path}: the root element is <{element.tag}>, expected <PubmedArticleSet> "
            f"or <MedlineCitationSet>; this is not PubMed/MEDLINE citation XML.{hint}"
        )


def _read_citation(path: Path, record: ElementTree.Element, number: int) -> AnnotatedDocument:
    citation = record if record.tag == "MedlineCitation" else record.find("MedlineCitation")
    location = f"{path}, citation {number}"
    pmid_element = citation.find("PMID") if citation is not None else None
    pmid = _clean_text(pmid_element) if pmid_element is not None else ""
    if not pmid:
        raise CorpusFormatError(
            f"{location}: the <{record.tag}> has no MedlineCitation/PMID element or it "
            "is empty; every PubMed citation has one."
        )
    title_element = citation.find("Article/ArticleTitle")
    title = _clean_text(title_element) if title_element is not None else ""
    sections = []
    for section in citation.findall("Article/Abstract/AbstractText"):
        text = _clean_text(section)
        label = (section.get("Label") or "").strip()
        if label and text:
            sections.append(f"{label}: {text}")
        elif text:
            sections.append(text)
    abstract = " ".join(sections)

    passages = [Passage(offset=0, text=title, type="title")]
    text = title
    if abstract:
        passages.append(Passage(offset=len(title) + 1, text=abstract, type="abstract"))
        text = f"{title} {abstract}"
    return AnnotatedDocument(doc_id=pmid, text=text, passages=passages, location=location)


def _clean_text(element: ElementTree.Element) -> str:
    """Return the element's text with its inline markup dropped and XML whitespace collapsed."""
    return XML_WHITESPACE.sub(" ", "".join(element.itertext())).strip()


def _log_summary(path: Path, n_citations: int, skipped: Counter) -> None:
    for tag, count in sorted(skipped.items()):
        level = logging.INFO if tag in SKIPPED_TAGS else logging.WARNING
        logger.log(
            level, "%s: skipped %d <%s> element(s), which are not citations.", path, count, tag
        )
    if n_citations == 0:
        logger.warning("%s: the file contains no citations.", path)
