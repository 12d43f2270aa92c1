"""The document model that every corpus format maps to, and its mapping to spaCy Docs.

A reader (PubTator now) yields :class:`AnnotatedDocument` objects: the text,
the entity mentions with character offsets, document-level relations and the
passages (title, abstract).  :func:`to_doc` turns one into a Doc and
:func:`from_doc` turns a Doc back into one, for writers.

On the Doc:

- ``doc.spans["mentions"]`` contains every mention, overlapping and nested ones
  too, in source order, with ``label_`` (entity type) and ``kb_id_`` (the
  concept ID string exactly as in the source, e.g. ``D001|D002``).
- ``doc.ents`` contains a non-overlapping subset chosen by
  :func:`spacy.util.filter_spans`: longest in tokens first, then the earliest
  start, then the mention that comes first in the source.
- Doc extensions, registered on import and stored in ``doc.user_data``, so
  they survive ``DocBin(store_user_data=True)``, which returns their lists as
  tuples:

  - ``doc._.biobert_doc_id``: the document ID (PMID for PubTator), a string.
  - ``doc._.biobert_passages``: ``[{"type", "offset", "length"}, ...]``.
  - ``doc._.biobert_relations``: ``[{"type", "arguments"}, ...]``.
  - ``doc._.biobert_mention_sources``: the source values
    ``{"span", "start", "end", "text", "extra"}`` of mentions whose span differs
    from the source offsets or text, or that carry extra source fields.  The
    key is the span's ``id_`` in ``doc.spans["mentions"]``, which is the
    mention's index in the document as a string.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

logger = logging.getLogger(__name__)

MENTIONS_KEY = "mentions"
DOC_ID_EXTENSION = "biobert_doc_id"
PASSAGES_EXTENSION = "biobert_passages"
RELATIONS_EXTENSION = "biobert_relations"
MENTION_SOURCES_EXTENSION = "biobert_mention_sources"

# A warning lists at most this many mentions of one document; the count is always complete.
MAX_LISTED_MENTIONS = 5


@dataclass
class Mention:
    """An entity mention: character offsets into the document text, end exclusive."""

    start: int
    end: int
    text: str  # as written in the source, which may differ from the text at the offsets
    label: str  # entity type, e.g. "Disease"
    concept_id: str = ""  # exactly as in the source: "D009101", "D001|D002", " D015862"
    location: str = ""  # where the mention was read, e.g. "train.txt, line 12"
    extra: Tuple[str, ...] = ()  # source fields after the concept ID, kept verbatim


@dataclass
class Relation:
    """A document-level relation, e.g. BC5CDR's ``CID`` between a chemical and a disease ID."""

    type: str
    arguments: Tuple[str, ...]
    location: str = ""


@dataclass
class Passage:
    """A part of the document text (a title, an abstract) and its character offset."""

    offset: int
    text: str
    type: str = ""


@dataclass
class AnnotatedDocument:
    """A document with its entity mentions, relations and passages, independent of file format."""

    doc_id: str
    text: str
    mentions: List[Mention] = field(default_factory=list)
    relations: List[Relation] = field(default_factory=list)
    passages: List[Passage] = field(default_factory=list)
    location: str = ""


@dataclass
class Defect:
    """A problem found in a corpus: where, of which kind, and what was done about it."""

    location: str
    # A short name such as "text_mismatch" or "duplicate_id"; each reader's
    # docstring lists the kinds it reports, and to_doc reports
    # "misaligned_mention", "mention_without_tokens" and "overlapping_mentions".
    kind: str
    message: str


def register_extensions() -> None:
    """Register the ``biobert_*`` Doc extensions unless they are registered already."""
    for name in (
        DOC_ID_EXTENSION,
        PASSAGES_EXTENSION,
        RELATIONS_EXTENSION,
        MENTION_SOURCES_EXTENSION,
    ):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


register_extensions()

DocMaker = Union[Language, Callable[[str], Doc]]


def to_doc(
    nlp: DocMaker, document: AnnotatedDocument, *, defects: Optional[List[Defect]] = None
) -> Doc:
    """Build a Doc from the document: tokens, ``doc.spans["mentions"]``, ``doc.ents``, extensions.

    A mention whose offsets do not fall on token boundaries becomes the span of
    the whole tokens it touches (``alignment_mode="expand"``).  Its source
    offsets and text stay in ``doc._.biobert_mention_sources``, and
    :func:`from_doc` returns them unchanged.  A mention that covers no token
    (only whitespace) cannot become a span and is left out.  Each of these
    cases, and the mentions left out of ``doc.ents`` because they overlap, is
    logged as one warning per document.  Pass a list as ``defects`` to collect
    them one by one.

    Args:
        nlp: a pipeline (its ``make_doc`` is used, so no component runs) or a
            tokenizer, any callable from text to Doc.
    """
    register_extensions()
    make_doc = nlp.make_doc if isinstance(nlp, Language) else nlp
    doc = make_doc(document.text)
    if doc.text != document.text:
        raise ValueError(
            f"Document {document.doc_id!r}: the tokenizer changed the text, so the "
            "mention offsets no longer fit. Use a tokenizer that keeps the text as it is."
        )
    spans: List[Span] = []
    sources: Dict[str, Dict[str, Any]] = {}
    misaligned: List[str] = []
    unplaced: List[str] = []
    for index, mention in enumerate(document.mentions):
        span = doc.char_span(mention.start, mention.end, alignment_mode="expand")
        described = f"{mention.start}-{mention.end} {mention.text!r}"
        if span is None or not span.text.strip():
            unplaced.append(described)
            _add_defect(
                defects,
                mention.location,
                "mention_without_tokens",
                f"document {document.doc_id!r}: the mention {described} covers no token "
                "and is left out of the Doc.",
            )
            continue
        span_id = str(index)
        span = Span(
            doc,
            span.start,
            span.end,
            label=mention.label,
            kb_id=mention.concept_id,
            span_id=span_id,
        )
        if (span.start_char, span.end_char) != (mention.start, mention.end):
            misaligned.append(f"{described} -> {span.start_char}-{span.end_char} {span.text!r}")
            _add_defect(
                defects,
                mention.location,
                "misaligned_mention",
                f"document {document.doc_id!r}: the mention {described} does not fall "
                f"on token boundaries; its span is {span.start_char}-{span.end_char} "
                f"{span.text!r}.",
            )
        if (
            (span.start_char, span.end_char) != (mention.start, mention.end)
            or span.text != mention.text
            or mention.extra
        ):
            sources[span_id] = {
                "span": [span.start_char, span.end_char],
                "start": mention.start,
                "end": mention.end,
                "text": mention.text,
                "extra": list(mention.extra),
            }
        spans.append(span)

    doc.spans[MENTIONS_KEY] = spans
    # Ents are made without span_id, so the mention index is not written to token.ent_id.
    entities = [
        Span(doc, span.start, span.end, label=span.label, kb_id=span.kb_id)
        for span in filter_spans(spans)
    ]
    doc.ents = entities
    _log_document_warnings(document.doc_id, len(spans), len(entities), misaligned, unplaced)
    if defects is not None and len(entities) < len(spans):
        defects.append(
            Defect(
                document.location,
                "overlapping_mentions",
                f"document {document.doc_id!r}: {len(spans) - len(entities)} of "
                f"{len(spans)} mentions overlap a longer or earlier one and are left out "
                f"of doc.ents; all are in doc.spans[{MENTIONS_KEY!r}].",
            )
        )

    doc._.set(DOC_ID_EXTENSION, document.doc_id)
    doc._.set(
        PASSAGES_EXTENSION,
        [
            {"type": passage.type, "offset": passage.offset, "length": len(passage.text)}
            for passage in document.passages
        ],
    )
    doc._.set(
        RELATIONS_EXTENSION,
        [
            {"type": relation.type, "arguments": list(relation.arguments)}
            for relation in document.relations
        ],
    )
    doc._.set(MENTION_SOURCES_EXTENSION, sources)
    return doc


def from_doc(
    doc: Doc, *, spans_key: Optional[str] = None, doc_id: Optional[str] = None
) -> AnnotatedDocument:
    """Build an AnnotatedDocument from a Doc, e.g. to write predictions or gold data.

    Args:
        spans_key: read mentions from ``doc.spans[spans_key]``; None reads
            ``doc.ents`` (what a pipeline predicts).  With ``"mentions"`` on a
            Doc from :func:`to_doc`, every mention comes back with its source
            offsets, text and extra fields.
        doc_id: the document ID; None takes ``doc._.biobert_doc_id``, or ``""``
            when that is not set.
    """
    register_extensions()
    if spans_key is None:
        spans = list(doc.ents)
    elif spans_key in doc.spans:
        spans = list(doc.spans[spans_key])
    else:
        raise KeyError(
            f"The Doc has no span group {spans_key!r}; it has "
            f"{sorted(doc.spans.keys()) or 'none'}. Use spans_key=None to read doc.ents."
        )
    if doc_id is None:
        doc_id = doc._.get(DOC_ID_EXTENSION) or ""
    sources = doc._.get(MENTION_SOURCES_EXTENSION) or {}
    location = f"Doc {doc_id!r}"
    mentions = [_span_to_mention(span, sources, location) for span in spans]

    passages = [
        Passage(
            offset=item["offset"],
            text=doc.text[item["offset"] : item["offset"] + item["length"]],
            type=item["type"],
        )
        for item in doc._.get(PASSAGES_EXTENSION) or []
    ]
    if not passages:
        passages = [Passage(offset=0, text=doc.text)]
    relations = [
        Relation(type=item["type"], arguments=tuple(item["arguments"]), location=location)
        for item in doc._.get(RELATIONS_EXTENSION) or []
    ]
    return AnnotatedDocument(
        doc_id=doc_id,
        text=doc.text,
        mentions=mentions,
        relations=relations,
        passages=passages,
        location=location,
    )


def _span_to_mention(span: Span, sources: Dict[str, Dict[str, Any]], location: str) -> Mention:
    source = sources.get(span.id_) if span.id_ else None
    # The offset check keeps a record from applying to a span that was changed after to_doc.
    if source is not None and list(source["span"]) == [span.start_char, span.end_char]:
        return Mention(
            start=source["start"],
            end=source["end"],
            text=source["text"],
            label=span.label_,
            concept_id=span.kb_id_,
            location=location,
            extra=tuple(source["extra"]),
        )
    return Mention(
        start=span.start_char,
        end=span.end_char,
        text=span.text,
        label=span.label_,
        concept_id=span.kb_id_,
        location=location,
    )


def _add_defect(defects: Optional[List[Defect]], location: str, kind: str, message: str) -> None:
    if defects is not None:
        defects.append(Defect(location, kind, message))


def _log_document_warnings(
    doc_id: str, n_spans: int, n_entities: int, misaligned: List[str], unplaced: List[str]
) -> None:
    if misaligned:
        logger.warning(
            "Document %r: %d mention(s) do not fall on token boundaries; their spans "
            "cover the whole tokens, and from_doc(doc, spans_key=%r) returns the source "
            "offsets: %s",
            doc_id,
            len(misaligned),
            MENTIONS_KEY,
            _list_some(misaligned),
        )
    if unplaced:
        logger.warning(
            "Document %r: %d mention(s) cover no token and are left out of the Doc: %s",
            doc_id,
            len(unplaced),
            _list_some(unplaced),
        )
    if n_entities < n_spans:
        logger.warning(
            "Document %r: %d of %d mentions overlap a longer or earlier mention and are "
            "left out of doc.ents; all are in doc.spans[%r].",
            doc_id,
            n_spans - n_entities,
            n_spans,
            MENTIONS_KEY,
        )


def _list_some(items: List[str]) -> str:
    listed = "; ".join(items[:MAX_LISTED_MENTIONS])
    if len(items) > MAX_LISTED_MENTIONS:
        listed += f"; and {len(items) - MAX_LISTED_MENTIONS} more"
    return listed
