"""brat standoff files: read ``.txt``/``.ann`` pairs into AnnotatedDocuments.

Each document is a ``.txt`` file with its annotations in the ``.ann`` file of
the same name beside it.  The ``.ann`` file has one annotation per line, its
fields separated by tabs::

    T1<TAB>Disease 0 13<TAB>breast cancer            text-bound annotation
    T2<TAB>Gene 20 25;30 34<TAB>BRCA1 gene           discontinuous: fragments joined by ';'
    N1<TAB>Reference T1 MESH:D001943<TAB>Breast Neoplasms   normalization
    R1<TAB>Associated Arg1:T1 Arg2:T2                 relation
    *<TAB>Equiv T1 T3                                 equivalence
    E1<TAB>Expression:T4 Theme:T2                     event
    A1<TAB>Negation E1                                attribute (M: modifier, the older name)
    #1<TAB>AnnotatorNotes T1<TAB>free text            note

How each kind maps to the document model:

- A text-bound annotation (``T``) becomes a :class:`Mention` whose ``extra``
  is ``(annotation ID,)``, e.g. ``("T1",)``, so relations can refer to it.  A
  discontinuous annotation becomes one Mention per fragment, all with the same
  ID, type and concept ID, and each is reported as a ``discontinuous_mention``
  defect.  A span from the first start to the last end would cover words that
  are not part of the mention.
- Normalizations (``N``) set ``concept_id`` of the mention they refer to, as
  ``database:ID`` (``MESH:D001943``).  Several normalizations of one mention
  are joined with ``|`` in file order.  The BioNLP Shared Task 2013 form
  ``Reference Annotation:T1 Referent:MESH:D001943`` is read too.
- Relations (``R``) become :class:`Relation` objects with the arguments as
  written (``("Arg1:T1", "Arg2:T2")``).  Equivalences (``*``) become Relations
  whose arguments are the annotation IDs (``("T1", "T3")``).
- Events (``E``), attributes (``A``, ``M``), notes (``#``) and normalizations
  of annotations other than text-bound ones are not kept.  They are counted
  and reported once per document as an ``unsupported_annotation`` defect.

Offsets count the characters of the ``.txt`` file as stored, decoded as UTF-8,
end exclusive.  Two consequences:

- A byte-order mark at the start of the ``.txt`` counts as one character, as
  in brat's server, which opens text files with ``codecs.open`` and the
  ``utf8`` codec rather than ``utf-8-sig`` (``open_textfile`` in
  ``server/src/annotation.py``).  It is replaced by a space in the document text, so every
  offset stays valid and the mark cannot stick to the first word.  A tool that
  counted without the mark would shift every mention by one, which shows up as
  ``text_mismatch`` defects that ``on_text_mismatch="search"`` repairs.
- CRLF line ends in the ``.txt`` are kept in the document text, and each
  ``\\r`` counts as a character.

NOTE: the CRLF rule matches tools that read the text without newline
translation.  Annotations made on a text whose CRLF had been read as one
character drift by one per earlier line end and show up as text_mismatch defects.

The ``.ann`` file may use CRLF line ends and start with a byte-order mark;
blank lines are skipped.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

from .iob import CorpusFormatError
from .lines import decode_line
from .mentions import AnnotatedDocument, Defect, Mention, Passage, Relation
from .common import TEXT_MISMATCH_POLICIES, DefectReport, resolve_text_mismatch

logger = logging.getLogger(__name__)

MISSING_ANN_POLICIES = ("error", "empty")
ANNOTATION_ID = re.compile(r"(?:[A-Za-z]+|#[A-Za-z]*)[0-9]+\S*")
OFFSET = re.compile(r"[0-9]+")
ROLE_ARGUMENT = re.compile(r"([^:\s]+):(\S+)")
# ID prefixes whose annotations are counted and reported rather than kept.
UNSUPPORTED_KINDS = {"E": "event", "A": "attribute", "M": "attribute", "#": "note"}
TEXT_BOUND_FORMAT = "T1<TAB>Type start end[;start end...]<TAB>text"


def read_brat(
    path: Union[str, Path],
    *,
    on_text_mismatch: str = "keep",
    search_window: int = 100,
    on_missing_ann: str = "error",
    defects: Optional[List[Defect]] = None,
) -> Iterator[AnnotatedDocument]:
    """Yield the documents of a brat ``.txt`` file or of a folder of ``.txt``/``.ann`` pairs.

    ``path`` is a ``.txt`` file (an ``.ann`` file names the ``.txt`` beside
    it) or a folder.  A folder yields its ``.txt`` files in sorted name order,
    without looking into subfolders; ``.ann`` files without a ``.txt`` are
    reported as one ``missing_text`` defect.  The document ID is the file name
    without ``.txt``, and the document has one passage, the whole text.

    A ``.txt`` without its ``.ann`` raises CorpusFormatError
    (``on_missing_ann="error"``, the default, because a lost file would
    otherwise train the model on a document without entities) or is read as
    a document without annotations and reported as a ``missing_annotations``
    defect (``"empty"``).

    A text-bound annotation whose text differs from the document text at its
    offsets is handled by ``on_text_mismatch``, as in
    :func:`~spacy_biobert.readers.pubtator.read_pubtator`.  ``"keep"`` (the
    default) keeps the offsets and the annotation text as written.
    ``"search"`` moves the mention to the nearest occurrence of its text within
    ``search_window`` characters, or leaves it out when there is none.
    ``"skip"`` leaves it out, and ``"error"`` raises CorpusFormatError.  A
    discontinuous annotation is never moved, so ``"search"`` leaves it out.

    Each defect is logged as a warning (at most 10 of each kind per call, then
    a count at the end) and, when ``defects`` is a list, appended to it.

    Raises:
        FileNotFoundError: when ``path`` does not exist, or an ``.ann`` file
            given as ``path`` has no ``.txt`` beside it.
        CorpusFormatError: for a malformed ``.ann`` line (the message names
            the file, the line and the field), offsets outside the text or an
            empty span, a duplicate annotation ID, a reference to an ID that
            the file does not define, bytes that are not UTF-8, a missing
            ``.ann`` (see above) and a folder without ``.txt`` files.
    """
    _check_options(on_text_mismatch, search_window, on_missing_ann)
    path = Path(path)
    report = DefectReport(path, defects, logger)
    for text_path in _find_text_files(path, report):
        yield _read_pair(text_path, report, on_text_mismatch, search_window, on_missing_ann)
    report.log_summary()


def _check_options(on_text_mismatch: str, search_window: int, on_missing_ann: str) -> None:
    if on_text_mismatch not in TEXT_MISMATCH_POLICIES:
        raise ValueError(
            f"Invalid on_text_mismatch {on_text_mismatch!r}; expected one of "
            f"{', '.join(TEXT_MISMATCH_POLICIES)}."
        )
    if on_missing_ann not in MISSING_ANN_POLICIES:
        raise ValueError(
            f"Invalid on_missing_ann {on_missing_ann!r}; expected one of "
            f"{', '.join(MISSING_ANN_POLICIES)}."
        )
    if search_window < 0:
        raise ValueError(f"Invalid search_window {search_window}; expected 0 or more characters.")


def _find_text_files(path: Path, report: DefectReport) -> List[Path]:
    if path.is_dir():
        text_paths = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file())
        orphans = sorted(
            p.name
            for p in path.iterdir()
            if p.suffix == ".ann" and p.is_file() and not p.with_suffix(".txt").is_file()
        )
        if orphans:
            listed = ", ".join(orphans[:5])
            if len(orphans) > 5:
                listed += f" and {len(orphans) - 5} more"
            report.add(
                str(path),
                "missing_text",
                f"{len(orphans)} .ann file(s) have no .txt file beside them and are not "
                f"read: {listed}.",
            )
        if not text_paths:
            raise CorpusFormatError(
                f"{path}: no .txt files found in this folder; a brat corpus is a folder "
                "of .txt files, each with its .ann file of the same name beside it."
            )
        return text_paths
    if not path.exists():
        raise FileNotFoundError(f"Corpus file or folder not found: {path}")
    if path.suffix == ".ann":
        text_path = path.with_suffix(".txt")
        if not text_path.is_file():
            raise FileNotFoundError(
                f"Text file not found: {text_path}, which the annotation file {path} belongs to."
            )
        return [text_path]
    if path.suffix != ".txt":
        raise CorpusFormatError(
            f"{path}: expected a brat .txt file (with its .ann file beside it) or a "
            "folder of such pairs."
        )
    return [path]


def _read_pair(
    text_path: Path,
    report: DefectReport,
    on_text_mismatch: str,
    search_window: int,
    on_missing_ann: str,
) -> AnnotatedDocument:
    text = _read_text(text_path)
    document = AnnotatedDocument(
        doc_id=text_path.stem,
        text=text,
        passages=[Passage(offset=0, text=text)],
        location=str(text_path),
    )
    ann_path = text_path.with_suffix(".ann")
    if not ann_path.is_file():
        if on_missing_ann == "error":
            raise CorpusFormatError(
                f"{ann_path}: annotation file not found for {text_path.name}. Add the "
                ".ann file (an empty one for a document without annotations), or read "
                "with on_missing_ann='empty' to read such documents as unannotated."
            )
        report.add(
            str(text_path),
            "missing_annotations",
            f"no annotation file {ann_path.name}; read as a document without "
            "annotations (on_missing_ann='empty').",
        )
        return document

    parsed = _AnnotationFile(ann_path, text)
    parsed.parse()
    document.mentions = parsed.build_mentions(report, on_text_mismatch, search_window)
    document.relations = parsed.relations
    parsed.report_unsupported(report, document.doc_id)
    return document


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    has_bom = data.startswith(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusFormatError(
            f"{path}: invalid UTF-8 at byte {error.start}. Save the text file as UTF-8."
        ) from None
    if has_bom:
        # The mark is one character of the stored text, so a space in its place keeps the offsets.
        text = " " + text[1:]
    return text


@dataclass
class _TextBound:
    annotation_id: str
    label: str
    fragments: List[Tuple[int, int]]
    text: str
    location: str
    concept_ids: List[str] = field(default_factory=list)


class _AnnotationFile:
    """The annotations of one ``.ann`` file, checked against the document text."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.text = text
        self.text_bound: Dict[str, _TextBound] = {}
        self.id_lines: Dict[str, int] = {}
        self.relations: List[Relation] = []
        self.unsupported: Counter = Counter()
        # Checked and applied after the whole file is read, because a line may refer to a later ID.
        self.normalizations: List[Tuple[str, str]] = []  # (target ID, concept ID)
        self.references: List[Tuple[str, str]] = []  # (location, referenced ID)

    def parse(self) -> None:
        with self.path.open("rb") as file:
            for line_number, raw in enumerate(file, start=1):
                line = self._decode_line(line_number, raw)
                if line.strip():
                    self._parse_line(line_number, line)
        for location, target in self.references:
            if target not in self.id_lines:
                raise CorpusFormatError(
                    f"{location}, field 2: the annotation ID {target!r} is "
                    f"not defined in {self.path.name}. Refer to an ID that a line of "
                    "this file starts with."
                )
        for target, concept_id in self.normalizations:
            if target in self.text_bound:
                self.text_bound[target].concept_ids.append(concept_id)
            else:
                self.unsupported["normalization of a non-text-bound annotation"] += 1

    def _decode_line(self, line_number: int, raw: bytes) -> str:
        return decode_line(self.path, line_number, raw, CorpusFormatError).rstrip("\r\n")

    def _parse_line(self, line_number: int, line: str) -> None:
        location = f"{self.path}, line {line_number}"
        annotation_id = line.split("\t", 1)[0]
        if annotation_id != "*" and not ANNOTATION_ID.fullmatch(annotation_id):
            raise CorpusFormatError(
                f"{location}, field 1 (ID): {annotation_id[:40]!r} is not a brat "
                "annotation ID; expected a letter prefix and a number, such as T1, R2, "
                f"N3, E4, A5 or #6, or '*', then a tab. Found {line[:80]!r}."
            )
        self._check_unique(location, line_number, annotation_id)
        prefix = annotation_id[0]
        if prefix == "T":
            self._parse_text_bound(location, annotation_id, line)
        elif prefix == "N":
            self._parse_normalization(location, line)
        elif prefix == "R":
            self._parse_relation(location, line)
        elif prefix == "*":
            self._parse_equivalence(location, line)
        elif prefix in UNSUPPORTED_KINDS:
            self.unsupported[UNSUPPORTED_KINDS[prefix]] += 1
        else:
            raise CorpusFormatError(
                f"{location}, field 1 (ID): unknown annotation kind {annotation_id!r}; "
                "brat IDs start with T (text-bound), R (relation), E (event), A or M "
                "(attribute), N (normalization), # (note) or are '*' (equivalence)."
            )

    def _check_unique(self, location: str, line_number: int, annotation_id: str) -> None:
        if annotation_id == "*":
            return
        first_line = self.id_lines.get(annotation_id)
        if first_line is not None:
            raise CorpusFormatError(
                f"{location}, field 1 (ID): duplicate annotation ID {annotation_id!r}, "
                f"already used on line {first_line}. Give each annotation its own ID."
            )
        self.id_lines[annotation_id] = line_number

    def _parse_text_bound(self, location: str, annotation_id: str, line: str) -> None:
        fields = line.split("\t", 2)
        if len(fields) < 3:
            raise CorpusFormatError(
                f"{location}: the text-bound annotation has {len(fields)} tab-separated "
                f"field(s), expected 3: {TEXT_BOUND_FORMAT}. Found {line[:80]!r}."
            )
        label, _, offsets = fields[1].partition(" ")
        if not label:
            raise CorpusFormatError(
                f"{location}, field 2 (type and offsets): the entity type is empty; "
                f"expected {TEXT_BOUND_FORMAT}, found {fields[1]!r}."
            )
        fragments = [self._parse_fragment(location, part) for part in offsets.split(";")]
        self.text_bound[annotation_id] = _TextBound(
            annotation_id, label, fragments, fields[2], location
        )

    def _parse_fragment(self, location: str, part: str) -> Tuple[int, int]:
        values = part.split(" ")
        if len(values) != 2 or not all(OFFSET.fullmatch(value) for value in values):
            raise CorpusFormatError(
                f"{location}, field 2 (type and offsets): {part!r} is not a pair of "
                "offsets 'start end' (whole numbers from 0, one space between them); "
                f"expected {TEXT_BOUND_FORMAT}."
            )
        start, end = int(values[0]), int(values[1])
        if end > len(self.text):
            raise CorpusFormatError(
                f"{location}, field 2 (type and offsets): the offsets {start}-{end} are "
                f"outside the text, which has {len(self.text)} characters. Offsets count "
                "characters of the .txt file from 0; is this .ann file for another text?"
            )
        if start >= end:
            raise CorpusFormatError(
                f"{location}, field 2 (type and offsets): the span {start}-{end} is empty "
                "or reversed; the end offset is exclusive and must be greater than the start."
            )
        return start, end

    def _parse_normalization(self, location: str, line: str) -> None:
        fields = line.split("\t")
        parts = fields[1].split(" ") if len(fields) >= 2 else []
        shared_task_form = (
            len(parts) == 3
            and parts[1].startswith("Annotation:")
            and parts[2].startswith("Referent:")
        )
        if shared_task_form:
            parts = [parts[0], parts[1][len("Annotation:") :], parts[2][len("Referent:") :]]
        if len(parts) != 3 or not all(parts) or ":" not in parts[2]:
            raise CorpusFormatError(
                f"{location}, field 2 (normalization): expected 'Reference ID "
                f"database:concept', e.g. 'Reference T1 MESH:D001943', found {line[:80]!r}."
            )
        self.references.append((location, parts[1]))
        self.normalizations.append((parts[1], parts[2]))

    def _parse_relation(self, location: str, line: str) -> None:
        fields = line.split("\t")
        parts = fields[1].split(" ") if len(fields) >= 2 else []
        arguments = parts[1:]
        matches = [ROLE_ARGUMENT.fullmatch(argument) for argument in arguments]
        if not parts or not parts[0] or len(arguments) < 2 or not all(matches):
            raise CorpusFormatError(
                f"{location}, field 2 (relation): expected 'Type Arg1:ID Arg2:ID', e.g. "
                f"'Associated Arg1:T1 Arg2:T2', found {line[:80]!r}."
            )
        for match in matches:
            self.references.append((location, match.group(2)))
        self.relations.append(Relation(parts[0], tuple(arguments), location))

    def _parse_equivalence(self, location: str, line: str) -> None:
        fields = line.split("\t")
        parts = fields[1].split(" ") if len(fields) >= 2 else []
        if len(parts) < 3 or not all(parts):
            raise CorpusFormatError(
                f"{location}, field 2 (equivalence): expected 'Type ID ID [ID...]', e.g. "
                f"'Equiv T1 T2', found {line[:80]!r}."
            )
        for target in parts[1:]:
            self.references.append((location, target))
        self.relations.append(Relation(parts[0], tuple(parts[1:]), location))

    def build_mentions(
        self, report: DefectReport, on_text_mismatch: str, search_window: int
    ) -> List[Mention]:
        """Turn the text-bound annotations into mentions, in file order, checking their text."""
        mentions: List[Mention] = []
        for annotation in self.text_bound.values():
            concept_id = "|".join(annotation.concept_ids)
            if len(annotation.fragments) > 1:
                mentions += self._split_discontinuous(
                    annotation, concept_id, report, on_text_mismatch
                )
                continue
            start, end = annotation.fragments[0]
            mention = Mention(
                start=start,
                end=end,
                text=annotation.text,
                label=annotation.label,
                concept_id=concept_id,
                location=annotation.location,
                extra=(annotation.annotation_id,),
            )
            if self.text[start:end] != mention.text:
                mention = self._handle_text_mismatch(
                    mention, report, on_text_mismatch, search_window
                )
            if mention is not None:
                mentions.append(mention)
        return mentions

    def _split_discontinuous(
        self, annotation: _TextBound, concept_id: str, report: DefectReport, on_text_mismatch: str
    ) -> List[Mention]:
        pieces = [self.text[start:end] for start, end in annotation.fragments]
        # brat writes the text of a discontinuous annotation as its fragments joined by one space.
        matches = " ".join(pieces) == annotation.text
        described = ";".join(f"{start}-{end}" for start, end in annotation.fragments)
        if not matches:
            problem = (
                f"field 3 (text): {annotation.text!r} differs from the text of the "
                f"fragments {described} joined by spaces, {' '.join(pieces)!r}"
            )
            if on_text_mismatch == "error":
                raise CorpusFormatError(
                    f"{annotation.location}, {problem}. Correct the offsets or the text, "
                    "or read with on_text_mismatch='keep' or 'skip'."
                )
            if on_text_mismatch != "keep":
                report.add(
                    annotation.location,
                    "text_mismatch",
                    f"{problem}; the discontinuous annotation {annotation.annotation_id} is "
                    f"left out (on_text_mismatch={on_text_mismatch!r}, and discontinuous "
                    "annotations are never moved).",
                )
                return []
            report.add(
                annotation.location,
                "text_mismatch",
                f"{problem}; kept the offsets, and each fragment keeps the text as written "
                "(on_text_mismatch='keep').",
            )
        report.add(
            annotation.location,
            "discontinuous_mention",
            f"the discontinuous annotation {annotation.annotation_id} ({described}) is "
            f"read as {len(pieces)} mentions, one per fragment, that share its ID.",
        )
        return [
            Mention(
                start=start,
                end=end,
                text=piece if matches else annotation.text,
                label=annotation.label,
                concept_id=concept_id,
                location=annotation.location,
                extra=(annotation.annotation_id,),
            )
            for (start, end), piece in zip(annotation.fragments, pieces)
        ]

    def _handle_text_mismatch(
        self, mention: Mention, report: DefectReport, on_text_mismatch: str, search_window: int
    ) -> Optional[Mention]:
        return resolve_text_mismatch(
            mention,
            self.text,
            field="field 3 (text)",
            policy=on_text_mismatch,
            search_window=search_window,
            report=report,
        )

    def report_unsupported(self, report: DefectReport, doc_id: str) -> None:
        """Report the annotations that are not kept, once for the document, with counts."""
        if not self.unsupported:
            return
        counts = ", ".join(f"{count} {kind}(s)" for kind, count in sorted(self.unsupported.items()))
        report.add(
            str(self.path),
            "unsupported_annotation",
            f"document {doc_id!r}: not kept: {counts}. This reader keeps text-bound "
            "annotations, normalizations of them, relations and equivalences.",
        )
