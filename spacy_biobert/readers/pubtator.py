"""PubTator files: read them into AnnotatedDocuments and write them back.

One block per document, blocks separated by a blank line::

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>mention text<TAB>type<TAB>concept IDs[<TAB>more fields]
    PMID<TAB>relation type<TAB>argument<TAB>argument[<TAB>argument]

The document text is title + " " + abstract, and offsets count characters
(Python string indices) in it from 0, end exclusive.  Concept IDs and the
fields after them (BC5CDR's seventh column lists the parts of a composite
mention) are kept verbatim, leading spaces included, so the writer reproduces
each block line for line.  A line is a mention line if it has 6 or more
tab-separated fields, and a relation line if it has 4 or 5 and its second
field, the relation type, starts with a letter.

NOTE: NCBI-disease and BC5CDR are ASCII, so code-point offsets are checked only
on ASCII text.  A file whose offsets count bytes or UTF-16 units would shift
the mentions after a non-ASCII character, which shows up as text_mismatch defects.

Reading accepts CRLF line ends and a UTF-8 byte-order mark.  Writing uses LF,
no byte-order mark, and a blank line after every block; mention lines come
before relation lines.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .iob import CorpusFormatError
from .lines import decode_line
from .common import (
    DUPLICATE_ID_POLICIES,
    TEXT_MISMATCH_POLICIES,
    DefectReport,
    atomic_output,
    resolve_text_mismatch,
)
from .mentions import AnnotatedDocument, Defect, Mention, Passage, Relation

logger = logging.getLogger(__name__)


TEXT_LINE = re.compile(r"([^\t|]+)\|([ta])\|(.*)", re.DOTALL)
INTEGER = re.compile(r"-?[0-9]+")
MENTION_FORMAT = "PMID<TAB>start<TAB>end<TAB>mention text<TAB>type<TAB>concept IDs"


def read_pubtator(
    path: Union[str, Path],
    *,
    on_text_mismatch: str = "keep",
    search_window: int = 100,
    on_duplicate_id: str = "keep",
    defects: Optional[List[Defect]] = None,
) -> Iterator[AnnotatedDocument]:
    """Yield the documents of a PubTator file, checking every line.

    A mention whose text differs from the document text at its offsets is
    handled by ``on_text_mismatch``:

    - ``"keep"`` (default): keep the offsets, which PubTator treats as the
      annotation, and the mention text as written, so a writer reproduces the line;
    - ``"search"``: find the mention text, or else the text without
      surrounding whitespace, at a start within ``search_window`` characters
      of the given start.  The nearest occurrence gives the new offsets and
      text, and without one the mention is left out;
    - ``"skip"``: leave the mention out;
    - ``"error"``: raise CorpusFormatError.

    A document ID seen earlier in the file is kept (``on_duplicate_id="keep"``,
    the default) or the later document is left out (``"skip"``).

    Each defect is logged as a warning (at most 10 of each kind per file, then
    a count at the end) and, when ``defects`` is a list, appended to it.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        CorpusFormatError: for a malformed file, and the message names the
            file, the line and, where there is one, the field.  Malformed are
            offsets that are not integers, lie outside the text or give an
            empty span, an empty type, and a line that is not a title,
            abstract, mention or relation line.  So are a title without an
            abstract, a line with another document's ID, bytes that are not
            UTF-8 and a file without documents.
    """
    if on_text_mismatch not in TEXT_MISMATCH_POLICIES:
        raise ValueError(
            f"Invalid on_text_mismatch {on_text_mismatch!r}; expected one of "
            f"{', '.join(TEXT_MISMATCH_POLICIES)}."
        )
    if on_duplicate_id not in DUPLICATE_ID_POLICIES:
        raise ValueError(
            f"Invalid on_duplicate_id {on_duplicate_id!r}; expected one of "
            f"{', '.join(DUPLICATE_ID_POLICIES)}."
        )
    if search_window < 0:
        raise ValueError(f"Invalid search_window {search_window}; expected 0 or more characters.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file not found: {path}")

    report = DefectReport(path, defects, logger)
    parser = _Parser(path, report, on_text_mismatch, search_window, on_duplicate_id)
    with path.open("rb") as file:
        for line_number, raw in enumerate(file, start=1):
            line = _decode_line(path, line_number, raw)
            document = parser.read_line(line_number, line)
            if document is not None:
                yield document
    document = parser.close_document(at_end=True)
    if document is not None:
        yield document
    if parser.n_documents == 0:
        raise CorpusFormatError(
            f"{path}: no documents found; a PubTator document starts with a line "
            "'PMID|t|title'. Is it an empty file?"
        )
    report.log_summary()


def format_pubtator(document: AnnotatedDocument) -> str:
    """Format one document as a PubTator block: its lines, each ending in a newline.

    Raises:
        ValueError: for an invalid document ID (empty, or containing ``|``),
            a tab or line break inside a field or the text, or mention offsets
            outside the text.  Also for passages other than a title at 0 and
            an abstract at len(title) + 1.
    """
    doc_id = document.doc_id
    if not doc_id or any(character in doc_id for character in "|\t\r\n"):
        raise ValueError(
            f"Invalid document ID {doc_id!r} for PubTator: it must be non-empty and "
            "contain no '|', tab or line break."
        )
    title, abstract = _split_title_abstract(document)
    lines = [f"{doc_id}|t|{title}", f"{doc_id}|a|{abstract}"]
    for mention in document.mentions:
        if not 0 <= mention.start < mention.end <= len(document.text):
            raise ValueError(
                f"Document {doc_id!r}: the mention {mention.start}-{mention.end} "
                f"{mention.text!r} is empty or outside the text ({len(document.text)} characters)."
            )
        fields = [str(mention.start), str(mention.end), mention.text, mention.label]
        fields += [mention.concept_id, *mention.extra]
        lines.append(_join_fields(doc_id, fields))
    for relation in document.relations:
        lines.append(_join_fields(doc_id, [relation.type, *relation.arguments]))
    return "".join(line + "\n" for line in lines)


def write_pubtator(
    documents: Iterable[AnnotatedDocument], target: Union[str, Path, IO[str]]
) -> int:
    """Write documents as a PubTator file, or to a text stream; return how many were written.

    A file is written to a temporary file first and then renamed, so an
    invalid document leaves any earlier file in place.
    """
    if hasattr(target, "write"):
        return _write_blocks(documents, target)
    with atomic_output(Path(target)) as stream:
        return _write_blocks(documents, stream)


def _write_blocks(documents: Iterable[AnnotatedDocument], stream: IO[str]) -> int:
    count = 0
    for document in documents:
        stream.write(format_pubtator(document) + "\n")
        count += 1
    return count


def _split_title_abstract(document: AnnotatedDocument) -> Tuple[str, str]:
    text = document.text
    passages = document.passages
    if len(passages) == 2:
        title, abstract = passages[0].text, passages[1].text
        fits = (
            passages[0].offset == 0
            and passages[1].offset == len(title) + 1
            and text == f"{title} {abstract}"
        )
        if not fits:
            raise ValueError(
                f"Document {document.doc_id!r}: PubTator needs the title at offset 0 and "
                "the abstract at len(title) + 1, with one space between them; the "
                f"passages are at offsets {passages[0].offset} and {passages[1].offset}."
            )
    elif len(passages) <= 1:
        # A document without a title/abstract split is written as a title with an empty abstract.
        title, abstract = text, ""
    else:
        raise ValueError(
            f"Document {document.doc_id!r} has {len(passages)} passages, but PubTator "
            "stores only a title and an abstract."
        )
    if any(character in text for character in "\r\n"):
        raise ValueError(
            f"Document {document.doc_id!r}: the text contains a line break, which a "
            "PubTator text line cannot hold. Replace line breaks with spaces; that "
            "keeps every offset."
        )
    return title, abstract


def _join_fields(doc_id: str, fields: List[str]) -> str:
    for value in fields:
        if any(character in value for character in "\t\r\n"):
            raise ValueError(
                f"Document {doc_id!r}: the field {value!r} contains a tab or a line "
                "break, which would split the PubTator line."
            )
    return "\t".join([doc_id, *fields])


def _decode_line(path: Path, line_number: int, raw: bytes) -> str:
    line = decode_line(path, line_number, raw, CorpusFormatError)
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


@dataclass
class _OpenDocument:
    doc_id: str
    title: str
    title_line: int
    abstract: Optional[str] = None
    text: str = ""  # title + " " + abstract, set with the abstract
    mentions: List[Mention] = field(default_factory=list)
    relations: List[Relation] = field(default_factory=list)


class _Parser:
    """The state of reading one file: the document being read and the IDs seen."""

    def __init__(
        self,
        path: Path,
        report: DefectReport,
        on_text_mismatch: str,
        search_window: int,
        on_duplicate_id: str,
    ):
        self.path = path
        self.report = report
        self.on_text_mismatch = on_text_mismatch
        self.search_window = search_window
        self.on_duplicate_id = on_duplicate_id
        self.current: Optional[_OpenDocument] = None
        self.first_lines: Dict[str, int] = {}  # document ID -> line of its first title
        self.n_documents = 0

    def read_line(self, line_number: int, line: str) -> Optional[AnnotatedDocument]:
        """Read one line; return the document it completes, if any."""
        if not line.strip():
            return self.close_document(at_end=False)
        match = TEXT_LINE.fullmatch(line)
        if match:
            doc_id, kind, text = match.groups()
            if kind == "t":
                return self._read_title(line_number, doc_id, text)
            self._read_abstract(line_number, doc_id, text)
            return None
        self._read_annotation(line_number, line)
        return None

    def close_document(self, *, at_end: bool) -> Optional[AnnotatedDocument]:
        """Finish the open document; return it unless it is a skipped duplicate."""
        current = self.current
        if current is None:
            return None
        if current.abstract is None:
            after = "before the end of the file" if at_end else "before the blank line"
            raise CorpusFormatError(
                f"{self.path}, line {current.title_line}: document {current.doc_id!r} "
                f"has a title line but no abstract line {after}. Add "
                f"'{current.doc_id}|a|abstract' after the title (the abstract may be "
                "empty); if the file ends here, it may be truncated."
            )
        self.current = None
        location = f"{self.path}, line {current.title_line}"
        first_line = self.first_lines.get(current.doc_id)
        if first_line is not None:
            kept = "kept" if self.on_duplicate_id == "keep" else "left out"
            self.report.add(
                location,
                "duplicate_id",
                f"document ID {current.doc_id!r} was already used by the document on "
                f"line {first_line}; this later document is {kept} "
                f"(on_duplicate_id={self.on_duplicate_id!r}). Remove one copy if both "
                "are the same abstract.",
            )
            if self.on_duplicate_id == "skip":
                return None
        else:
            self.first_lines[current.doc_id] = current.title_line
        self.n_documents += 1
        return AnnotatedDocument(
            doc_id=current.doc_id,
            text=current.text,
            mentions=current.mentions,
            relations=current.relations,
            passages=[
                Passage(offset=0, text=current.title, type="title"),
                Passage(offset=len(current.title) + 1, text=current.abstract, type="abstract"),
            ],
            location=location,
        )

    def _read_title(self, line_number: int, doc_id: str, title: str) -> Optional[AnnotatedDocument]:
        finished = None
        if self.current is not None:
            if self.current.abstract is not None:
                self.report.add(
                    f"{self.path}, line {line_number}",
                    "missing_blank_line",
                    f"document {doc_id!r} starts without a blank line after document "
                    f"{self.current.doc_id!r}; read as a new document. Separate "
                    "documents with a blank line.",
                )
            finished = self.close_document(at_end=False)
        self.current = _OpenDocument(doc_id, title, line_number)
        return finished

    def _read_abstract(self, line_number: int, doc_id: str, abstract: str) -> None:
        location = f"{self.path}, line {line_number}"
        current = self.current
        if current is None:
            raise CorpusFormatError(
                f"{location}: abstract line without a title line before it. Put "
                f"'{doc_id}|t|title' on the line before the abstract."
            )
        if current.abstract is not None:
            raise CorpusFormatError(
                f"{location}: a second abstract line for document {current.doc_id!r}, "
                f"whose title is on line {current.title_line}. Each document has one "
                "title line, then one abstract line, then its annotation lines."
            )
        if doc_id != current.doc_id:
            raise CorpusFormatError(
                f"{location}, field 1 (document ID): the abstract line has ID {doc_id!r} "
                f"but the title on line {current.title_line} has {current.doc_id!r}."
            )
        current.abstract = abstract
        current.text = f"{current.title} {abstract}"

    def _read_annotation(self, line_number: int, line: str) -> None:
        location = f"{self.path}, line {line_number}"
        current = self.current
        if current is None:
            raise CorpusFormatError(
                f"{location}: expected a title line 'PMID|t|title' to start a document, "
                f"found {line[:80]!r}."
            )
        if current.abstract is None:
            raise CorpusFormatError(
                f"{location}: expected the abstract line '{current.doc_id}|a|abstract' "
                f"after the title on line {current.title_line}, found {line[:80]!r}."
            )

        fields = line.split("\t")
        is_relation = _is_relation_line(location, line, fields)
        if fields[0] != current.doc_id:
            raise CorpusFormatError(
                f"{location}, field 1 (document ID): {fields[0]!r} differs from the ID "
                f"{current.doc_id!r} of the title on line {current.title_line}. Start "
                "each annotation line with its document's ID, and separate documents "
                "with a blank line."
            )

        if is_relation:
            current.relations.append(Relation(fields[1], tuple(fields[2:]), location))
            return
        mention = self._parse_mention(location, fields)
        if mention is not None:
            current.mentions.append(mention)

    def _parse_mention(self, location: str, fields: List[str]) -> Optional[Mention]:
        current = self.current
        text = current.text
        start = _parse_offset(location, fields, 2, "start")
        end = _parse_offset(location, fields, 3, "end")
        if start < 0 or end > len(text):
            raise CorpusFormatError(
                f"{location}, fields 2-3 (start, end): the offsets {start}-{end} are "
                f"outside the document text, which has {len(text)} characters (title "
                f"{len(current.title)}, a space, abstract {len(current.abstract)}). "
                "Offsets count characters of title + ' ' + abstract from 0."
            )
        if start >= end:
            raise CorpusFormatError(
                f"{location}, fields 2-3 (start, end): the span {start}-{end} is empty "
                "or reversed; the end offset is exclusive and must be greater than the start."
            )
        if not fields[4].strip():
            raise CorpusFormatError(
                f"{location}, field 5 (type): the entity type is empty; expected a "
                "type such as 'Disease' or 'Chemical'."
            )
        mention = Mention(
            start=start,
            end=end,
            text=fields[3],
            label=fields[4],
            concept_id=fields[5],
            location=location,
            extra=tuple(fields[6:]),
        )
        if text[start:end] == mention.text:
            return mention
        return self._handle_text_mismatch(mention)

    def _handle_text_mismatch(self, mention: Mention) -> Optional[Mention]:
        return resolve_text_mismatch(
            mention,
            self.current.text,
            field="field 4 (mention text)",
            policy=self.on_text_mismatch,
            search_window=self.search_window,
            report=self.report,
        )

def _is_relation_line(location: str, line: str, fields: List[str]) -> bool:
    """Tell a relation line (True) from a mention line (False); raise for any other line."""
    if len(fields) >= 6:
        return False
    # Relation types are words (CID, Association), and offsets start with a digit or a sign.
    if len(fields) in (4, 5) and fields[1][:1].isalpha():
        return True
    if len(fields) >= 2 and INTEGER.fullmatch(fields[1]):
        raise CorpusFormatError(
            f"{location}: the mention line has {len(fields)} tab-separated "
            f"field(s), expected 6 or more: {MENTION_FORMAT} (the concept ID "
            f"field may be empty). Found {line[:80]!r}; is the file truncated?"
        )
    raise CorpusFormatError(
        f"{location}: expected a title line 'PMID|t|title', an abstract line "
        f"'PMID|a|abstract', a mention line ({MENTION_FORMAT}) or a relation "
        f"line (PMID<TAB>type<TAB>ID<TAB>ID, the type starting with a letter); "
        f"found {len(fields)} tab-separated field(s): {line[:80]!r}."
    )


def _parse_offset(location: str, fields: List[str], number: int, name: str) -> int:
    value = fields[number - 1]
    if not INTEGER.fullmatch(value):
        raise CorpusFormatError(
            f"{location}, field {number} ({name}): {value!r} is not an integer. Mention "
            f"lines are {MENTION_FORMAT}, with character offsets as whole numbers."
        )
    return int(value)


