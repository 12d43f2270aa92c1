"""The corpus reader for training configs: IOB, PubTator, BioC, brat or ``.spacy`` files.

``format = "auto"`` picks the format from the path:

- a ``.spacy`` file, or a folder of them: spaCy's format;
- a folder of ``.txt``/``.ann`` pairs: brat;
- ``.xml``: BioC XML, and ``.json``/``.jsonl``: BioC JSON;
- ``.txt``, ``.tsv`` and the other text suffixes: PubTator when the first
  non-blank line is ``PMID|t|title``, IOB otherwise.
"""

from __future__ import annotations

import gzip
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Set
from xml.etree import ElementTree

from spacy.language import Language
from spacy.training import Corpus, Example

from .bioc import read_bioc_json, read_bioc_xml
from .brat import read_brat
from .iob import CorpusFormatError, check_entity_type, read_iob_docs
from .mentions import AnnotatedDocument, to_doc
from .pubmed import read_pubmed_xml
from .pubtator import TEXT_LINE, read_pubtator

IOB_SUFFIXES = (".tsv", ".iob", ".iob2", ".conll", ".txt")
FORMATS = ("auto", "iob", "pubtator", "bioc_xml", "bioc_json", "brat", "spacy")

DocumentReader = Callable[[Path], Iterable[AnnotatedDocument]]
# spacy train calls a corpus reader once per epoch; these loggers report data defects.
READER_LOGGERS = tuple(
    f"spacy_biobert.readers.{name}"
    for name in ("iob", "mentions", "pubtator", "bioc", "brat", "pubmed")
)

DOCUMENT_READERS = {
    "pubtator": read_pubtator,
    "bioc_xml": read_bioc_xml,
    "bioc_json": read_bioc_json,
    "brat": read_brat,
}


def create_corpus_reader(
    path: Optional[Path],
    entity_type: Optional[str] = None,
    limit: int = 0,
    format: str = "auto",
) -> Callable[[Language], Iterator[Example]]:
    """Read training or evaluation examples from a corpus file or folder.

    Args:
        path: the corpus file or folder.
        entity_type: for IOB files, the label of untyped ``B``/``I`` tags; for
            PubTator, BioC and brat, one label that replaces every mention type
            (e.g. ``Disease`` for NCBI-disease's four disease classes).
        limit: read at most this many examples (sentences or documents); 0 reads all.
        format: one of ``FORMATS``; ``auto`` detects it (see the module docstring).
    """
    if path is None:
        raise ValueError(
            "No corpus path given: paths.train or paths.dev is null. Set both on the "
            "command line, e.g. --paths.train corpus/train.tsv --paths.dev corpus/dev.tsv."
        )
    check_entity_type(entity_type)
    path = Path(path)
    if format not in FORMATS:
        raise ValueError(f"Invalid corpus format {format!r}; expected one of {', '.join(FORMATS)}.")
    if not path.exists():
        raise FileNotFoundError(f"Corpus file not found: {path}")
    if format == "auto":
        format = detect_format(path)
    if format == "spacy":
        return Corpus(path, limit=limit)
    if format == "iob":
        return IobCorpus(path, entity_type=entity_type, limit=limit)
    return DocumentCorpus(path, DOCUMENT_READERS[format], entity_type=entity_type, limit=limit)


PUBMED_ROOTS = ("PubmedArticleSet", "MedlineCitationSet")


def read_documents(path: Path, format: str = "auto") -> Iterator[AnnotatedDocument]:
    """Yield the documents of a PubTator, BioC, brat or PubMed XML file, for tagging.

    With ``auto``, the root element distinguishes PubMed XML (``.xml``,
    ``.xml.gz``) from BioC XML.
    """
    path = Path(path)
    if format == "auto":
        format = "pubmed" if _is_pubmed_xml(path) else detect_format(path)
    if format == "pubmed":
        return read_pubmed_xml(path)
    if format not in DOCUMENT_READERS:
        raise ValueError(
            f"{path}: format {format!r} has no document text to tag; expected PubMed "
            f"XML, {', '.join(DOCUMENT_READERS)}."
        )
    return iter(DOCUMENT_READERS[format](path))


def _is_pubmed_xml(path: Path) -> bool:
    name = path.name.lower()
    if not (name.endswith(".xml") or name.endswith(".xml.gz")) or not path.is_file():
        return False
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            for _, element in ElementTree.iterparse(file, events=("start",)):
                return element.tag in PUBMED_ROOTS
    except (ElementTree.ParseError, OSError, EOFError):
        return False
    return False


def detect_format(path: Path) -> str:
    """Return the corpus format of a file or folder (see the module docstring)."""
    if path.is_dir():
        if any(path.glob("*.ann")):
            return "brat"
        if any(path.glob("**/*.spacy")):
            return "spacy"
        raise CorpusFormatError(
            f"{path}: the folder contains neither brat annotation files (.ann beside "
            "each .txt) nor .spacy files. Add the .ann files, or give a corpus file."
        )
    suffix = path.suffix.lower()
    if suffix == ".spacy":
        return "spacy"
    if suffix == ".xml":
        return "bioc_xml"
    if suffix in (".json", ".jsonl"):
        return "bioc_json"
    if suffix in IOB_SUFFIXES:
        with path.open("rb") as file:
            for raw in file:
                line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
                if line:
                    return "pubtator" if TEXT_LINE.fullmatch(line) else "iob"
        return "iob"
    raise CorpusFormatError(
        f"{path}: unknown corpus format {path.suffix!r}. Expected an IOB or PubTator "
        f"file ({', '.join(IOB_SUFFIXES)}), BioC (.xml, .json, .jsonl), a folder of "
        "brat .txt/.ann files, or a .spacy file; or set the format (format in the "
        "reader's config, --format for the convert command)."
    )


class IobCorpus:
    """Examples from an IOB file: the pipeline's tokenizer makes the predicted Doc."""

    def __init__(self, path: Path, *, entity_type: Optional[str], limit: int):
        self.path = path
        self.entity_type = entity_type
        self.limit = limit

        self.logged: Set[str] = set()

    def __call__(self, nlp: Language) -> Iterator[Example]:
        with warnings_once(self.logged):
            docs = read_iob_docs(self.path, nlp.vocab, self.entity_type)
            for i, reference in enumerate(docs):
                if self.limit and i >= self.limit:
                    break
                yield Example(nlp.make_doc(reference.text), reference)


class DocumentCorpus:
    """Examples from documents with character-offset mentions (PubTator, BioC, brat).

    The gold Doc is built with the pipeline's tokenizer, so a mention that does
    not fall on token boundaries is widened to whole tokens and reported.
    """

    def __init__(
        self, path: Path, read: DocumentReader, *, entity_type: Optional[str], limit: int
    ):
        self.path = path
        self.read = read
        self.entity_type = entity_type
        self.limit = limit
        self.logged: Set[str] = set()

    def __call__(self, nlp: Language) -> Iterator[Example]:
        with warnings_once(self.logged):
            for i, document in enumerate(self.read(self.path)):
                if self.limit and i >= self.limit:
                    break
                if self.entity_type:
                    for mention in document.mentions:
                        mention.label = self.entity_type
                reference = to_doc(nlp, document)
                yield Example(nlp.make_doc(reference.text), reference)


class _DropRepeats(logging.Filter):
    def __init__(self, logged: Set[str]):
        super().__init__()
        self.logged = logged

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.logged:
            return False
        self.logged.add(message)
        return True


@contextmanager
def warnings_once(logged: Set[str]) -> Iterator[None]:
    """Drop reader messages already in ``logged``, and add the new ones to it.

    A corpus object keeps its set across passes, so the defects of its file are
    reported in the first epoch and not again in every later one.
    """
    loggers = [logging.getLogger(name) for name in READER_LOGGERS]
    drop_repeats = _DropRepeats(logged)
    for logger in loggers:
        logger.addFilter(drop_repeats)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop_repeats)
