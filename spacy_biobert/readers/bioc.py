"""BioC files: read BioC XML and BioC JSON into AnnotatedDocuments, write BioC JSON.

A BioC file stores a collection of documents. A document has an
ID, infons (key-value pairs), passages and annotations. A passage has an
``offset`` and either a ``text`` or sentences with their own offsets and texts.
Annotations have infons, one or more locations (``offset``, ``length``) and a
text. Relations have infons and nodes (``refid``, ``role``). Offsets are
document-level character offsets (Python string indices), so
:attr:`AnnotatedDocument.text` places each passage at its offset and fills the
gaps between passages with spaces. In BC5CDR the abstract starts at
len(title) + 1, which gives title + " " + abstract, the text of the PubTator
files.

How BioC maps to the document model:

- Passages become :class:`BiocPassage`: ``type`` is the ``type`` infon, and
  ``infons`` keeps all of them. A passage made of sentences gets the text of
  its sentences, each at its offset. The sentences themselves are not kept.
- Annotations, at document, passage or sentence level, become
  :class:`BiocMention`: ``label`` is the ``type`` infon, ``concept_id`` the
  first of the ``identifier_keys`` infons present (``identifier``,
  ``Identifier``, ``MESH``), exactly as given. ``annotation_id`` and ``infons``
  keep the rest.
- An annotation with several locations (a discontinuous one, such as BC5CDR's
  "Ocular ... toxicity") is handled by ``on_discontinuous``: ``"span"`` (the
  default) makes one mention from its first to its last character, ``"split"``
  one mention per location. Either way each mention keeps the annotation's
  text and all its ``locations``, so :func:`write_bioc_json` writes the
  annotation back as it was. ``"skip"`` leaves it out and ``"error"`` raises.
  Each one is reported as a ``discontinuous_annotation`` defect.
- Relations become :class:`BiocRelation`: ``type`` is the ``type`` infon, or
  else the ``relation`` infon (BC5CDR). ``arguments`` are the nodes' refids,
  or, for a relation without nodes, the values of its other string infons in
  order (BC5CDR's ``Chemical`` and ``Disease`` MeSH IDs).

Collection-level fields (source, date, key, infons) are not kept.
:func:`spacy_biobert.readers.mentions.to_doc` keeps the mapped fields only, so
a document written from a Doc gets fresh annotation IDs and minimal infons.

Security: ElementTree never fetches a DTD or an external entity, and a reference
to an external entity is an undefined-entity error. Internal entities declared
in the file are expanded.

NOTE: protection against entity-expansion attacks ("billion laughs") comes
from expat, so it depends on the version Python uses (``pyexpat.EXPAT_VERSION``).
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union
from xml.parsers.expat import ErrorString

from .iob import CorpusFormatError
from .mentions import AnnotatedDocument, Defect, Mention, Passage, Relation
from .common import (
    DUPLICATE_ID_POLICIES,
    TEXT_MISMATCH_POLICIES,
    DefectReport,
    atomic_output,
    resolve_text_mismatch,
)

logger = logging.getLogger(__name__)

IDENTIFIER_KEYS = ("identifier", "Identifier", "MESH")
RELATION_TYPE_KEYS = ("type", "relation")
DISCONTINUOUS_POLICIES = ("span", "split", "skip", "error")
DOCUMENT_KEYS = ("id", "infons", "passages", "annotations", "relations")
INTEGER = re.compile(r"-?[0-9]+")
UNSUPPORTED_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
JSON_SHAPES = (
    "a BioC collection (an object with \"documents\"), a BioC document (an object "
    "with \"passages\", as PubTator3 exports it), a list of documents, or JSON lines "
    "with one document or collection per line"
)


@dataclass
class BiocMention(Mention):
    """A mention read from a BioC annotation, with the annotation's ID, infons and locations."""

    annotation_id: str = ""
    infons: Dict[str, Any] = field(default_factory=dict)  # all of them, as in the source
    # (offset, length) of each location when there are several; empty for one location.
    locations: Tuple[Tuple[int, int], ...] = ()


@dataclass
class BiocRelation(Relation):
    """A relation read from BioC, with its ID, infons and (refid, role) nodes."""

    relation_id: str = ""
    infons: Dict[str, Any] = field(default_factory=dict)
    nodes: Tuple[Tuple[str, str], ...] = ()


@dataclass
class BiocPassage(Passage):
    """A passage read from BioC, with all its infons (``type`` among them)."""

    infons: Dict[str, Any] = field(default_factory=dict)


@dataclass
class BiocDocument(AnnotatedDocument):
    """A document read from BioC, with its infons and any fields outside BioC."""

    infons: Dict[str, Any] = field(default_factory=dict)
    # JSON keys that BioC does not define, e.g. PubTator3's "pmid", "journal", "authors".
    other_fields: Dict[str, Any] = field(default_factory=dict)


def read_bioc_xml(
    path: Union[str, Path],
    *,
    on_text_mismatch: str = "keep",
    search_window: int = 100,
    on_duplicate_id: str = "keep",
    on_discontinuous: str = "span",
    identifier_keys: Sequence[str] = IDENTIFIER_KEYS,
    defects: Optional[List[Defect]] = None,
) -> Iterator[BiocDocument]:
    """Yield the documents of a BioC XML file (BioC v1 or v2), one at a time.

    The file is parsed with ``ElementTree.iterparse`` and each document element
    is cleared once read, so memory stays at about one document.

    ``on_text_mismatch``, ``search_window`` and ``on_duplicate_id`` work as in
    :func:`spacy_biobert.readers.pubtator.read_pubtator`, and
    ``on_discontinuous`` is described in this module's docstring. Each defect
    is logged as a warning (at most 10 of each kind per file, then a count) and,
    when ``defects`` is a list, appended to it.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        CorpusFormatError: for invalid XML (with line and column), a root element
            other than ``<collection>``, a file without documents, and a
            document that breaks the rules in :func:`read_bioc_json`.
    """
    options = _Options.checked(
        on_text_mismatch, search_window, on_duplicate_id, on_discontinuous, identifier_keys
    )
    path = _existing_file(path)
    report = DefectReport(path, defects, logger)
    builder = _DocumentBuilder(path, options, report)

    with path.open("rb") as file:
        events = ET.iterparse(file, events=("start", "end"))
        root = None
        depth = 0
        try:
            for event, element in events:
                if event == "start":
                    depth += 1
                    if root is None:
                        root = element
                        _check_xml_root(path, element)
                    continue
                depth -= 1
                if depth == 1 and element.tag == "document":
                    builder.n_read += 1
                    document = builder.build(_xml_document(element), str(path))
                    # Dropping the finished documents keeps memory at about one document.
                    root.clear()
                    if document is not None:
                        yield document
        except ET.ParseError as error:
            line, column = error.position
            raise CorpusFormatError(
                f"{path}, line {line}, column {column}: invalid XML "
                f"({ErrorString(error.code)}). Fix the file there; if it ends there, "
                "it may be truncated."
            ) from None

    if builder.n_read == 0:
        raise CorpusFormatError(
            f"{path}: no documents found; BioC XML has <document> elements inside "
            "<collection>. Is the file empty?"
        )
    report.log_summary()


def read_bioc_json(
    path: Union[str, Path],
    *,
    on_text_mismatch: str = "keep",
    search_window: int = 100,
    on_duplicate_id: str = "keep",
    on_discontinuous: str = "span",
    identifier_keys: Sequence[str] = IDENTIFIER_KEYS,
    defects: Optional[List[Defect]] = None,
) -> Iterator[BiocDocument]:
    """Yield the documents of a BioC JSON or JSON lines file.

    Accepted are a collection (an object with ``"documents"``), one document
    (an object with ``"passages"``, PubTator3's export), a list of documents,
    and JSON lines. The file is read line by line when its first non-blank
    line is a complete JSON value, and each line is then a document or a
    collection. Other files are loaded whole, so a large collection needs
    memory for all of it; JSON lines are streamed. A UTF-8 byte-order mark is
    accepted. The options and ``defects`` work as in :func:`read_bioc_xml`.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        CorpusFormatError: for invalid JSON or UTF-8 (with line and column), a
            UTF-16 or UTF-32 file, another top-level shape, a file without
            documents, and a document that is malformed. Malformed are a
            missing ID, a field of the wrong type, a passage that starts
            before the previous one ends, an annotation without a ``type``
            infon, and a location that is empty or outside the document text.
    """
    options = _Options.checked(
        on_text_mismatch, search_window, on_duplicate_id, on_discontinuous, identifier_keys
    )
    path = _existing_file(path)
    report = DefectReport(path, defects, logger)
    builder = _DocumentBuilder(path, options, report)

    with path.open("rb") as file:
        head = file.read(4)
        _check_byte_order_mark(path, head)
        file.seek(len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0)
        if _starts_with_json_line(path, file):
            documents = _read_json_lines(path, file, builder)
        else:
            documents = _read_json_whole(path, file, builder)
        for document in documents:
            if document is not None:
                yield document

    if builder.n_read == 0:
        raise CorpusFormatError(f"{path}: no documents found. Is the file empty?")
    report.log_summary()


def write_bioc_json(
    documents: Iterable[AnnotatedDocument],
    target: Union[str, Path, IO[str]],
    *,
    lines: bool = False,
    source: str = "",
    date: str = "",
    key: str = "",
) -> int:
    """Write documents as a BioC JSON collection, or as JSON lines; return how many were written.

    ``lines=True`` writes one document object per line and no collection
    fields. Documents are written one by one, so they need not fit in memory.
    A file is written to a temporary file first and then renamed, so an
    invalid document leaves any earlier file in place. :func:`build_bioc_document`
    describes how each document is written.
    """
    if hasattr(target, "write"):
        return _write_documents(documents, target, lines, source, date, key)
    with atomic_output(Path(target)) as stream:
        return _write_documents(documents, stream, lines, source, date, key)


def build_bioc_document(document: AnnotatedDocument) -> Dict[str, Any]:
    """Build the BioC JSON object of one document.

    Each annotation goes into the passage that contains its start, or to the
    document when none does, and relations go to the document. Infons read
    from BioC are written back, with ``type`` and the identifier infon set from
    the mention's label and concept ID. A mention without BioC fields gets the
    infons ``type`` and, unless its concept ID is empty, ``identifier``, and
    its index as ID. A relation without BioC fields gets the infons ``type``,
    ``argument1``, ``argument2`` and so on.

    Raises:
        ValueError: for an empty document ID, a mention outside the text, a
            passage whose text differs from the document text at its offset,
            and passages that overlap. Also for text outside every passage that
            is not whitespace, because BioC has no place for it.
    """
    if not document.doc_id:
        raise ValueError("Invalid document ID '': BioC needs a non-empty ID for each document.")
    passages = _passages_for_writing(document)
    annotations_by_passage: List[List[Dict[str, Any]]] = [[] for _ in passages]
    document_annotations: List[Dict[str, Any]] = []
    written_discontinuous = set()

    for index, mention in enumerate(document.mentions):
        if not 0 <= mention.start < mention.end <= len(document.text):
            raise ValueError(
                f"Document {document.doc_id!r}: the mention {mention.start}-{mention.end} "
                f"{mention.text!r} is empty or outside the text ({len(document.text)} characters)."
            )
        annotation = _annotation_object(mention, index)
        locations = tuple((item["offset"], item["length"]) for item in annotation["locations"])
        if len(locations) > 1:
            # The parts of a split annotation share its ID and locations; write it once.
            if (annotation["id"], locations) in written_discontinuous:
                continue
            written_discontinuous.add((annotation["id"], locations))
        start = locations[0][0]
        target = document_annotations
        for passage, passage_annotations in zip(passages, annotations_by_passage):
            if passage.offset <= start < passage.offset + len(passage.text):
                target = passage_annotations
                break
        target.append(annotation)

    passage_objects = []
    for passage, passage_annotations in zip(passages, annotations_by_passage):
        infons = dict(getattr(passage, "infons", {}) or {})
        if passage.type or "type" in infons:
            infons["type"] = passage.type
        passage_objects.append(
            {
                "offset": passage.offset,
                "infons": infons,
                "text": passage.text,
                "sentences": [],
                "annotations": passage_annotations,
                "relations": [],
            }
        )
    result = {
        "id": document.doc_id,
        "infons": dict(getattr(document, "infons", {}) or {}),
        "passages": passage_objects,
        "annotations": document_annotations,
        "relations": [_relation_object(relation) for relation in document.relations],
    }
    for name, value in (getattr(document, "other_fields", {}) or {}).items():
        result.setdefault(name, value)
    return result


# Reading: options, defects, files and top-level shapes


@dataclass
class _Options:
    on_text_mismatch: str
    search_window: int
    on_duplicate_id: str
    on_discontinuous: str
    identifier_keys: Tuple[str, ...]

    @classmethod
    def checked(
        cls,
        on_text_mismatch: str,
        search_window: int,
        on_duplicate_id: str,
        on_discontinuous: str,
        identifier_keys: Sequence[str],
    ) -> "_Options":
        for name, value, allowed in (
            ("on_text_mismatch", on_text_mismatch, TEXT_MISMATCH_POLICIES),
            ("on_duplicate_id", on_duplicate_id, DUPLICATE_ID_POLICIES),
            ("on_discontinuous", on_discontinuous, DISCONTINUOUS_POLICIES),
        ):
            if value not in allowed:
                raise ValueError(
                    f"Invalid {name} {value!r}; expected one of {', '.join(allowed)}."
                )
        if search_window < 0:
            raise ValueError(
                f"Invalid search_window {search_window}; expected 0 or more characters."
            )
        if isinstance(identifier_keys, str):
            raise ValueError(
                f"Invalid identifier_keys {identifier_keys!r}; expected a list of infon "
                f"keys such as {list(IDENTIFIER_KEYS)}."
            )
        return cls(
            on_text_mismatch, search_window, on_duplicate_id, on_discontinuous,
            tuple(identifier_keys),
        )


def _existing_file(path: Union[str, Path]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file not found: {path}")
    return path


def _check_xml_root(path: Path, element: ET.Element) -> None:
    if element.tag != "collection":
        raise CorpusFormatError(
            f"{path}: the root element is <{element.tag}>, expected <collection>. "
            "Is this a BioC XML file?"
        )


def _check_byte_order_mark(path: Path, head: bytes) -> None:
    for mark, encoding in UNSUPPORTED_BYTE_ORDER_MARKS:
        if head.startswith(mark):
            raise CorpusFormatError(
                f"{path}: the file starts with a {encoding} byte-order mark; BioC JSON "
                "is read as UTF-8. Save the file as UTF-8."
            )


def _decode(path: Path, raw: bytes, line_number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = line_number + raw.count(b"\n", 0, error.start)
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        raise CorpusFormatError(
            f"{path}, line {line}: invalid UTF-8 at byte {error.start - line_start + 1} "
            "of the line. Save the file as UTF-8."
        ) from None


def _parse_json(path: Path, text: str, first_line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        line = first_line + error.lineno - 1
        raise CorpusFormatError(
            f"{path}, line {line}, column {error.colno}: invalid JSON ({error.msg}). "
            "Fix the file there; if it ends there, it may be truncated."
        ) from None


def _starts_with_json_line(path: Path, file: IO[bytes]) -> bool:
    """Tell JSON lines (True) from one JSON value over many lines; leave ``file`` where it was."""
    position = file.tell()
    try:
        for raw in file:
            if raw.strip():
                try:
                    json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    return False
                return True
        return False
    finally:
        file.seek(position)


def _read_json_lines(
    path: Path, file: IO[bytes], builder: "_DocumentBuilder"
) -> Iterator[Optional[BiocDocument]]:
    for line_number, raw in enumerate(file, start=1):
        if not raw.strip():
            continue
        value = _parse_json(path, _decode(path, raw, line_number), line_number)
        yield from _read_json_value(value, f"{path}, line {line_number}", builder)


def _read_json_whole(
    path: Path, file: IO[bytes], builder: "_DocumentBuilder"
) -> Iterator[Optional[BiocDocument]]:
    value = _parse_json(path, _decode(path, file.read(), 1), 1)
    yield from _read_json_value(value, str(path), builder)


def _read_json_value(
    value: Any, where: str, builder: "_DocumentBuilder"
) -> Iterator[Optional[BiocDocument]]:
    if isinstance(value, dict) and "documents" in value:
        yield from _read_collection(value, where, builder)
    elif isinstance(value, dict) and ("passages" in value or "id" in value):
        builder.n_read += 1
        yield builder.build(value, where)
    elif isinstance(value, list):
        for document in value:
            builder.n_read += 1
            yield builder.build(document, where)
    else:
        found = (
            f"an object with the keys {sorted(value)[:10]}"
            if isinstance(value, dict)
            else _json_type(value)
        )
        raise CorpusFormatError(
            f"{where}: unknown top-level JSON shape, {found}. Expected {JSON_SHAPES}."
        )


def _read_collection(
    collection: Dict[str, Any], where: str, builder: "_DocumentBuilder"
) -> Iterator[Optional[BiocDocument]]:
    documents = collection["documents"]
    if not isinstance(documents, list):
        raise CorpusFormatError(
            f"{where}: field 'documents' of the collection is {_json_type(documents)}, "
            "expected a list of documents."
        )
    for document in documents:
        builder.n_read += 1
        yield builder.build(document, where)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"the number {value!r}"
    return names.get(type(value), type(value).__name__)


# Reading: XML elements in the shape of BioC JSON


def _xml_document(element: ET.Element) -> Dict[str, Any]:
    passages = [_xml_passage(passage) for passage in element.findall("passage")]
    # BioC v2 also allows a document with a text or sentences in place of passages.
    if element.find("text") is not None:
        passages.append({"offset": 0, "infons": {}, "text": element.findtext("text")})
    passages += [_xml_passage(sentence) for sentence in element.findall("sentence")]
    return {
        "id": element.get("id", element.findtext("id")),
        "infons": _xml_infons(element),
        "passages": passages,
        "annotations": [_xml_annotation(item) for item in element.findall("annotation")],
        "relations": [_xml_relation(item) for item in element.findall("relation")],
    }


def _xml_passage(element: ET.Element) -> Dict[str, Any]:
    """Convert a <passage> or <sentence> element; v1 has an <offset> element, v2 an attribute."""
    passage = {
        "offset": element.get("offset", element.findtext("offset")),
        "infons": _xml_infons(element),
        "text": element.findtext("text"),
        "sentences": [_xml_passage(sentence) for sentence in element.findall("sentence")],
        "annotations": [_xml_annotation(item) for item in element.findall("annotation")],
        "relations": [_xml_relation(item) for item in element.findall("relation")],
    }
    if passage["text"] is None and passage["sentences"]:
        passage["text"] = ""
    return passage


def _xml_infons(element: ET.Element) -> Dict[str, str]:
    return {infon.get("key", ""): infon.text or "" for infon in element.findall("infon")}


def _xml_annotation(element: ET.Element) -> Dict[str, Any]:
    return {
        "id": element.get("id"),
        "infons": _xml_infons(element),
        "text": element.findtext("text"),
        "locations": [
            {"offset": location.get("offset"), "length": location.get("length")}
            for location in element.findall("location")
        ],
    }


def _xml_relation(element: ET.Element) -> Dict[str, Any]:
    return {
        "id": element.get("id"),
        "infons": _xml_infons(element),
        "nodes": [
            {"refid": node.get("refid"), "role": node.get("role")}
            for node in element.findall("node")
        ],
    }


# Reading: one document


@dataclass
class _PassageSpan:
    offset: int
    end: int
    where: str  # e.g. "document '1', passage at offset 56"


class _DocumentBuilder:
    """Builds BiocDocuments from BioC JSON objects and checks them; tracks the IDs seen."""

    def __init__(self, path: Path, options: _Options, report: DefectReport):
        self.path = path
        self.options = options
        self.report = report
        self.first_locations: Dict[str, str] = {}
        self.n_read = 0

    def build(self, raw: Any, where: str) -> Optional[BiocDocument]:
        """Build one document; return None for a duplicate that on_duplicate_id skips."""
        if not isinstance(raw, dict):
            raise CorpusFormatError(
                f"{where}, document {self.n_read}: expected a JSON object, found "
                f"{_json_type(raw)}."
            )
        doc_id = raw.get("id")
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id:
            raise CorpusFormatError(
                f"{where}, document {self.n_read} of the file: the document ID is "
                f"missing or empty (found {doc_id!r}). Give each document an <id> "
                "element in XML or an \"id\" field in JSON."
            )
        location = f"{where}, document {doc_id!r}"
        passages, text, spans = self._read_passages(raw, location)
        mentions: List[Mention] = []
        relations: List[Relation] = []

        for item, owner in self._annotated_parts(raw, passages, spans, location):
            for index, annotation in enumerate(_list_field(item, "annotations", owner)):
                mentions += self._read_annotation(annotation, index, text, owner)
            for index, relation in enumerate(_list_field(item, "relations", owner)):
                relations.append(self._read_relation(relation, index, owner))

        if self._is_skipped_duplicate(doc_id, location):
            return None
        return BiocDocument(
            doc_id=doc_id,
            text=text,
            mentions=mentions,
            relations=relations,
            passages=passages,
            location=location,
            infons=_dict_field(raw, "infons", location),
            other_fields={key: value for key, value in raw.items() if key not in DOCUMENT_KEYS},
        )

    def _is_skipped_duplicate(self, doc_id: str, location: str) -> bool:
        first = self.first_locations.get(doc_id)
        if first is None:
            self.first_locations[doc_id] = location
            return False
        kept = "kept" if self.options.on_duplicate_id == "keep" else "left out"
        self.report.add(
            location,
            "duplicate_id",
            f"document ID {doc_id!r} was already used by an earlier document ({first}); "
            f"this later document is {kept} (on_duplicate_id="
            f"{self.options.on_duplicate_id!r}). Remove one copy if both are the same "
            "document.",
        )
        return self.options.on_duplicate_id == "skip"

    def _read_passages(
        self, raw: Dict[str, Any], location: str
    ) -> Tuple[List[BiocPassage], str, List[_PassageSpan]]:
        passages: List[BiocPassage] = []
        spans: List[_PassageSpan] = []
        text = ""
        for index, item in enumerate(_list_field(raw, "passages", location)):
            where = f"{location}, passage {index + 1}"
            if not isinstance(item, dict):
                raise CorpusFormatError(f"{where}: expected an object, found {_json_type(item)}.")
            offset = _integer_field(item, "offset", where)
            where = f"{location}, passage at offset {offset}"
            if offset < len(text):
                raise CorpusFormatError(
                    f"{where}, field 'offset': the passage starts before the end of the "
                    f"previous passage, at {len(text)}. Passage offsets are document-level "
                    "character offsets, in increasing order."
                )
            passage_text = self._passage_text(item, offset, where)
            text += " " * (offset - len(text)) + passage_text
            infons = _dict_field(item, "infons", where)
            passage_type = infons.get("type", "")
            passages.append(
                BiocPassage(
                    offset=offset,
                    text=passage_text,
                    type=passage_type if isinstance(passage_type, str) else str(passage_type),
                    infons=infons,
                )
            )
            spans.append(_PassageSpan(offset, offset + len(passage_text), where))
        return passages, text, spans

    def _passage_text(self, item: Dict[str, Any], offset: int, where: str) -> str:
        text = item.get("text")
        sentences = _list_field(item, "sentences", where)
        if text is not None and not isinstance(text, str):
            raise CorpusFormatError(
                f"{where}, field 'text': expected a string, found {_json_type(text)}."
            )
        if text:
            return text
        if not sentences:
            if text is None:
                raise CorpusFormatError(
                    f"{where}: the passage has neither a text nor sentences. Add a "
                    "text (it may be empty)."
                )
            return text
        # A passage made of sentences: place each at its document-level offset.
        built = ""
        for index, sentence in enumerate(sentences):
            sentence_where = f"{where}, sentence {index + 1}"
            if not isinstance(sentence, dict):
                raise CorpusFormatError(
                    f"{sentence_where}: expected an object, found {_json_type(sentence)}."
                )
            sentence_offset = _integer_field(sentence, "offset", sentence_where)
            sentence_text = sentence.get("text")
            if not isinstance(sentence_text, str):
                raise CorpusFormatError(
                    f"{sentence_where}, field 'text': expected a string, found "
                    f"{_json_type(sentence_text)}."
                )
            relative = sentence_offset - offset
            if relative < len(built):
                raise CorpusFormatError(
                    f"{sentence_where}, field 'offset': the sentence at {sentence_offset} "
                    f"starts before the end of the previous sentence or the passage start, "
                    f"at {offset + len(built)}."
                )
            built += " " * (relative - len(built)) + sentence_text
        return built

    def _annotated_parts(
        self,
        raw: Dict[str, Any],
        passages: List[BiocPassage],
        spans: List[_PassageSpan],
        location: str,
    ) -> Iterator[Tuple[Dict[str, Any], "_Owner"]]:
        """Yield each object that can hold annotations and relations, with its place."""
        raw_passages = raw.get("passages") or []
        for item, span in zip(raw_passages, spans):
            yield item, _Owner(span.where, span)
            for index, sentence in enumerate(_list_field(item, "sentences", span.where)):
                sentence_where = f"{span.where}, sentence {index + 1}"
                if not isinstance(sentence, dict):
                    raise CorpusFormatError(
                        f"{sentence_where}: expected an object, found {_json_type(sentence)}."
                    )
                offset = _integer_field(sentence, "offset", sentence_where)
                yield sentence, _Owner(f"{span.where}, sentence at offset {offset}", span)
        yield raw, _Owner(location, None)

    def _read_annotation(
        self, raw: Any, index: int, text: str, owner: "_Owner"
    ) -> List[Mention]:
        where = f"{owner.where}, annotation {index + 1}"
        if not isinstance(raw, dict):
            raise CorpusFormatError(f"{where}: expected an object, found {_json_type(raw)}.")
        annotation_id = raw.get("id")
        annotation_id = "" if annotation_id is None else str(annotation_id)
        if annotation_id:
            where = f"{owner.where}, annotation {annotation_id!r}"
        infons = _dict_field(raw, "infons", where)
        label = infons.get("type")
        if not isinstance(label, str) or not label.strip():
            self.report.add(
                where,
                "missing_type",
                f"infon 'type': the entity type is missing or empty (found {label!r}), "
                "so the annotation is left out. Add a type infon such as 'Disease' or "
                "'Chemical' to make it a mention.",
            )
            return []
        annotation_text = raw.get("text")
        if not isinstance(annotation_text, str):
            raise CorpusFormatError(
                f"{where}, field 'text': expected a string, found {_json_type(annotation_text)}."
            )
        locations = self._read_locations(raw, text, owner, where)
        if not locations:
            self.report.add(
                where,
                "annotation_without_location",
                "the annotation has no location, so it is left out. Add a location "
                "(offset, length) to make it a mention.",
            )
            return []

        mention = BiocMention(
            start=min(offset for offset, _ in locations),
            end=max(offset + length for offset, length in locations),
            text=annotation_text,
            label=label,
            concept_id=self._concept_id(infons),
            location=where,
            annotation_id=annotation_id,
            infons=infons,
            locations=tuple(locations) if len(locations) > 1 else (),
        )
        if len(locations) == 1:
            checked = self._check_text(mention, text)
            return [checked] if checked is not None else []
        return self._read_discontinuous(mention, text)

    def _read_locations(
        self, raw: Dict[str, Any], text: str, owner: "_Owner", where: str
    ) -> List[Tuple[int, int]]:
        locations = []
        for number, item in enumerate(_list_field(raw, "locations", where), start=1):
            location_where = f"{where}, location {number}"
            if not isinstance(item, dict):
                raise CorpusFormatError(
                    f"{location_where}: expected an object, found {_json_type(item)}."
                )
            offset = _integer_field(item, "offset", location_where)
            length = _integer_field(item, "length", location_where)
            if length < 1:
                raise CorpusFormatError(
                    f"{location_where}, field 'length': {length} gives an empty span; "
                    "expected 1 or more characters."
                )
            if offset < 0 or offset + length > len(text):
                raise CorpusFormatError(
                    f"{location_where}, fields 'offset', 'length': {offset}-{offset + length} "
                    f"is outside the document text, which has {len(text)} characters. "
                    "Offsets are document-level character offsets, not offsets within "
                    "the passage."
                )
            span = owner.passage
            if span is not None and not (span.offset <= offset and offset + length <= span.end):
                self.report.add(
                    location_where,
                    "location_outside_passage",
                    f"the location {offset}-{offset + length} lies outside its passage, "
                    f"{span.offset}-{span.end}; kept, because it is inside the document "
                    "text. Move the annotation to the passage that contains it.",
                )
            locations.append((offset, length))
        return locations

    def _concept_id(self, infons: Dict[str, Any]) -> str:
        for key in self.options.identifier_keys:
            if key in infons:
                return _infon_string(infons[key])
        return ""

    def _check_text(self, mention: BiocMention, text: str) -> Optional[BiocMention]:
        """Apply on_text_mismatch to a one-location mention; return it, moved, or None."""
        if text[mention.start : mention.end] == mention.text:
            return mention
        return resolve_text_mismatch(
            mention,
            text,
            field="field 'text'",
            policy=self.options.on_text_mismatch,
            search_window=self.options.search_window,
            report=self.report,
        )

    def _read_discontinuous(self, mention: BiocMention, text: str) -> List[Mention]:
        fragments = [text[offset : offset + length] for offset, length in mention.locations]
        described = ", ".join(f"{offset}-{offset + length}" for offset, length in mention.locations)
        if mention.text not in (" ".join(fragments), "".join(fragments)):
            problem = (
                f"field 'text': {mention.text!r} differs from the text at its "
                f"locations {described}, {' '.join(fragments)!r}"
            )
            policy = self.options.on_text_mismatch
            if policy == "error":
                raise CorpusFormatError(
                    f"{mention.location}, {problem}. Correct the locations or the text, "
                    "or read with on_text_mismatch='keep', 'search' or 'skip'."
                )
            if policy != "keep":
                self.report.add(
                    mention.location,
                    "text_mismatch",
                    f"{problem}; the annotation has several locations, which "
                    f"on_text_mismatch={policy!r} cannot search, so it is left out.",
                )
                return []
            self.report.add(
                mention.location,
                "text_mismatch",
                f"{problem}; kept the locations and the text as written "
                "(on_text_mismatch='keep').",
            )

        policy = self.options.on_discontinuous
        if policy == "error":
            raise CorpusFormatError(
                f"{mention.location}, field 'locations': the annotation {mention.text!r} "
                f"has several locations ({described}). Read with on_discontinuous="
                "'span', 'split' or 'skip'."
            )
        outcomes = {
            "span": f"kept as one mention over {mention.start}-{mention.end}",
            "split": f"kept as {len(mention.locations)} mentions, one per location",
            "skip": "left out",
        }
        self.report.add(
            mention.location,
            "discontinuous_annotation",
            f"the annotation {mention.text!r} has several locations ({described}); "
            f"{outcomes[policy]} (on_discontinuous={policy!r}).",
        )
        if policy == "skip":
            return []
        if policy == "span":
            return [mention]
        parts = []
        for offset, length in mention.locations:
            part = BiocMention(**{**mention.__dict__, "start": offset, "end": offset + length})
            part.infons = dict(mention.infons)
            parts.append(part)
        return parts

    def _read_relation(self, raw: Any, index: int, owner: "_Owner") -> BiocRelation:
        where = f"{owner.where}, relation {index + 1}"
        if not isinstance(raw, dict):
            raise CorpusFormatError(f"{where}: expected an object, found {_json_type(raw)}.")
        relation_id = raw.get("id")
        relation_id = "" if relation_id is None else str(relation_id)
        if relation_id:
            where = f"{owner.where}, relation {relation_id!r}"
        infons = _dict_field(raw, "infons", where)
        nodes = []
        for number, node in enumerate(_list_field(raw, "nodes", where), start=1):
            if not isinstance(node, dict) or not isinstance(node.get("refid"), str):
                raise CorpusFormatError(
                    f"{where}, node {number}: expected an object with a string 'refid' "
                    f"and 'role', found {node!r}."
                )
            nodes.append((node["refid"], _infon_string(node.get("role"))))

        type_key = next((key for key in RELATION_TYPE_KEYS if key in infons), None)
        relation_type = _infon_string(infons[type_key]) if type_key else ""
        if nodes:
            arguments = tuple(refid for refid, _ in nodes)
        else:
            arguments = tuple(
                value for key, value in infons.items() if key != type_key and isinstance(value, str)
            )
        return BiocRelation(
            type=relation_type,
            arguments=arguments,
            location=where,
            relation_id=relation_id,
            infons=infons,
            nodes=tuple(nodes),
        )


@dataclass
class _Owner:
    """The element that contains an annotation: its description and its passage, if any."""

    where: str
    passage: Optional[_PassageSpan]


def _list_field(item: Dict[str, Any], name: str, where: str) -> list:
    value = item.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CorpusFormatError(
            f"{where}, field {name!r}: expected a list, found {_json_type(value)}."
        )
    return value


def _dict_field(item: Dict[str, Any], name: str, where: str) -> Dict[str, Any]:
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CorpusFormatError(
            f"{where}, field {name!r}: expected an object of key-value pairs, found "
            f"{_json_type(value)}."
        )
    return value


def _integer_field(item: Dict[str, Any], name: str, where: str) -> int:
    """Read an integer: a JSON number or, as XML gives it, a string of digits."""
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()):
        return int(value)
    if value is None:
        raise CorpusFormatError(f"{where}, field {name!r}: missing; expected an integer.")
    raise CorpusFormatError(
        f"{where}, field {name!r}: {value!r} is not an integer. BioC offsets and "
        "lengths are whole numbers of characters."
    )


def _infon_string(value: Any) -> str:
    """Return an infon value as a string: strings as they are, null as '', others as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


# Writing


def _write_documents(
    documents: Iterable[AnnotatedDocument],
    stream: IO[str],
    lines: bool,
    source: str,
    date: str,
    key: str,
) -> int:
    count = 0
    if lines:
        for document in documents:
            stream.write(json.dumps(build_bioc_document(document), ensure_ascii=False) + "\n")
            count += 1
        return count

    header = {"source": source, "date": date, "key": key, "infons": {}}
    stream.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "documents": [\n')
    for document in documents:
        if count:
            stream.write(",\n")
        stream.write(json.dumps(build_bioc_document(document), ensure_ascii=False))
        count += 1
    stream.write("\n]}\n")
    return count


def _passages_for_writing(document: AnnotatedDocument) -> List[Passage]:
    text = document.text
    passages = document.passages or [Passage(offset=0, text=text)]
    end = 0
    for passage in passages:
        if passage.offset < end:
            raise ValueError(
                f"Document {document.doc_id!r}: the passage at offset {passage.offset} "
                f"starts before the previous passage ends, at {end}."
            )
        if text[passage.offset : passage.offset + len(passage.text)] != passage.text:
            raise ValueError(
                f"Document {document.doc_id!r}: the text of the passage at offset "
                f"{passage.offset} differs from the document text there."
            )
        _check_gap(document, end, passage.offset)
        end = passage.offset + len(passage.text)
    _check_gap(document, end, len(text))
    return passages


def _check_gap(document: AnnotatedDocument, start: int, end: int) -> None:
    if document.text[start:end].strip():
        raise ValueError(
            f"Document {document.doc_id!r}: the text at {start}-{end}, "
            f"{document.text[start:end][:40]!r}, is in no passage, and BioC keeps only "
            "passage texts. Add a passage for it."
        )


def _annotation_object(mention: Mention, index: int) -> Dict[str, Any]:
    infons = dict(getattr(mention, "infons", {}) or {})
    infons["type"] = mention.label
    identifier_key = next((key for key in IDENTIFIER_KEYS if key in infons), None)
    if identifier_key is not None:
        if _infon_string(infons[identifier_key]) != mention.concept_id:
            infons[identifier_key] = mention.concept_id
    elif mention.concept_id:
        infons["identifier"] = mention.concept_id

    locations = [(mention.start, mention.end - mention.start)]
    stored = getattr(mention, "locations", ())
    if len(stored) > 1:
        first, last = min(o for o, _ in stored), max(o + n for o, n in stored)
        # Use the stored locations only while the mention is still the span or one part of them.
        if (mention.start, mention.end) == (first, last) or (
            (mention.start, mention.end - mention.start) in stored
        ):
            locations = list(stored)
    annotation_id = getattr(mention, "annotation_id", "") or str(index)
    return {
        "id": annotation_id,
        "infons": infons,
        "text": mention.text,
        "locations": [{"offset": offset, "length": length} for offset, length in locations],
    }


def _relation_object(relation: Relation) -> Dict[str, Any]:
    infons = dict(getattr(relation, "infons", {}) or {})
    nodes = getattr(relation, "nodes", ())
    if infons or nodes:
        type_key = next((key for key in RELATION_TYPE_KEYS if key in infons), "type")
        infons[type_key] = relation.type
    else:
        infons = {"type": relation.type}
        for number, argument in enumerate(relation.arguments, start=1):
            infons[f"argument{number}"] = argument
    return {
        "id": getattr(relation, "relation_id", ""),
        "infons": infons,
        "nodes": [{"refid": refid, "role": role} for refid, role in nodes],
    }
