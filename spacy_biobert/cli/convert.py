"""``python -m spacy_biobert convert``: a corpus file to a ``.spacy`` file for ``spacy evaluate``.

Reads every format the config reader reads (IOB, PubTator, BioC, brat).
Documents with character offsets are tokenized with the biomedical
tokenizer; the Docs keep their span groups and ``doc._`` extensions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus

from ..readers.common import atomic_output, check_not_input
from ..readers.corpus import FORMATS, create_corpus_reader
from ..readers.mentions import MENTION_SOURCES_EXTENSION, MENTIONS_KEY

BIO_TOKENIZER = "spacy_biobert.BioTokenizer.v1"


def convert(
    input_path: Path,
    output_path: Path,
    *,
    entity_type: Optional[str] = None,
    lang: str = "en",
    format: str = "auto",
) -> int:
    """Write the sentences or documents of a corpus as gold Docs to a ``.spacy`` file.

    The output is written to a temporary file first, so a failure leaves any
    earlier output in place.  Returns the number of Docs written.

    Raises:
        ValueError: when the output is not a ``.spacy`` path or is the input.
        OSError: when the output cannot be written, naming the output path.
    """
    input_path = Path(input_path)
    output_path = Path(output_path)
    if output_path.is_dir():
        output_path = output_path / f"{input_path.stem}.spacy"
    if output_path.suffix != ".spacy":
        raise ValueError(
            f"Invalid output path {str(output_path)!r}: expected a name ending in "
            ".spacy (spacy evaluate and spacy train read only .spacy files) or a folder."
        )
    check_not_input(output_path, input_path)

    reader = create_corpus_reader(input_path, entity_type=entity_type, format=format)
    if isinstance(reader, Corpus):
        raise ValueError(f"{input_path} is already in spaCy's .spacy format.")
    nlp = spacy.blank(lang, config={"nlp": {"tokenizer": {"@tokenizers": BIO_TOKENIZER}}})
    doc_bin = DocBin(
        attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE", "ENT_KB_ID"], store_user_data=True
    )
    summary = ConversionSummary()
    warnings = _WarningCounter()
    handlers: List[logging.Handler] = [warnings]
    # Any handler on the logger turns off Python's last-resort printing of
    # warnings, so print them to stderr when logging is not configured.
    if not logging.getLogger().handlers:
        handlers.append(logging.StreamHandler())
    readers_logger = logging.getLogger("spacy_biobert.readers")
    for handler in handlers:
        readers_logger.addHandler(handler)
    try:
        for example in reader(nlp):
            doc_bin.add(example.reference)
            summary.add(example.reference)
    finally:
        for handler in handlers:
            readers_logger.removeHandler(handler)
    try:
        with atomic_output(output_path, binary=True) as stream:
            stream.write(doc_bin.to_bytes())
    except OSError as error:
        raise OSError(
            f"Could not write {output_path}: {error.strerror or error}. Check that "
            "the folder exists and is writable."
        ) from error
    print(f"Wrote {_count(len(doc_bin), 'doc')} to {output_path}")
    print(summary.describe(warnings.count))
    return len(doc_bin)


class ConversionSummary:
    """Counts what became of the mentions, so that nothing is dropped unnoticed."""

    def __init__(self) -> None:
        self.entities = 0
        self.mentions = 0
        self.widened = 0
        self.has_mentions = False

    def add(self, doc: Doc) -> None:
        self.entities += len(doc.ents)
        if MENTIONS_KEY in doc.spans:
            self.has_mentions = True
            self.mentions += len(doc.spans[MENTIONS_KEY])
            sources = doc._.get(MENTION_SOURCES_EXTENSION) or {}
            self.widened += sum(
                list(source["span"]) != [source["start"], source["end"]]
                for source in sources.values()
            )

    def describe(self, n_warnings: int) -> str:
        if not self.has_mentions:
            parts = [_count(self.entities, "entity", "entities")]
        else:
            parts = [
                f"{_count(self.mentions, 'mention')} in doc.spans[{MENTIONS_KEY!r}]",
                f"{self.entities:,} of them in doc.ents",
                f"{self.mentions - self.entities:,} left out of doc.ents because they overlap",
                f"{self.widened:,} widened to token boundaries",
            ]
        if n_warnings:
            parts.append(f"{_count(n_warnings, 'warning')} about the data above")
        return "; ".join(parts) + "."


def _count(n: int, singular: str, plural: Optional[str] = None) -> str:
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Convert an IOB, PubTator, BioC or brat corpus to a .spacy file.",
        description="Convert a corpus to a .spacy file, e.g. for spacy evaluate: a "
        "BioBERT-style IOB file (token<TAB>tag, blank line between sentences), a "
        "PubTator file, BioC XML or JSON, or a folder of brat .txt/.ann files.",
    )
    parser.add_argument("input", type=Path, help="the corpus file or brat folder")
    parser.add_argument("output", type=Path, help="the .spacy file or a folder for it")
    parser.add_argument(
        "--entity-type",
        default=None,
        help="label for untyped B/I tags in IOB files, e.g. Disease (required for "
        "untyped files); for other formats, one label replacing every mention type",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="the corpus format (default: auto, detected from the path and first line)",
    )
    parser.add_argument("--lang", default="en", help="spaCy language code (default: en)")
    parser.set_defaults(
        run=lambda args: convert(
            args.input,
            args.output,
            entity_type=args.entity_type,
            lang=args.lang,
            format=args.format,
        )
    )
