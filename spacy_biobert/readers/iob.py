"""BioBERT's NER files: one ``token<TAB>tag`` line per token, a blank line between sentences.

Tags are ``O``, ``B``/``I`` (untyped, as in BioBERT's NCBI-disease and BC2GM
files) or ``B-<type>``/``I-<type>``.  Untyped tags need ``entity_type``, the
label their entities get.  CRLF line ends and a UTF-8 byte-order mark are
accepted; ``-DOCSTART-`` lines (CoNLL style) are skipped.  Tokens may not
contain whitespace, because sentences are rebuilt as tokens joined by spaces.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ..tags import tags_to_spans
from .lines import decode_line

logger = logging.getLogger(__name__)

TAG_PATTERN = re.compile(r"^(O|[BI](-\S.*)?)$")


class CorpusFormatError(ValueError):
    """A corpus file is malformed; the message names the file, line and fix."""


@dataclass
class IobSentence:
    """One sentence of an IOB file, with typed BIO tags."""

    words: List[str]
    tags: List[str]
    line: int  # 1-based line number of the first token


def read_iob(path: Path, entity_type: Optional[str] = None) -> Iterator[IobSentence]:
    """Yield the sentences of an IOB file, checking every line.

    Args:
        entity_type: the label for untyped ``B``/``I`` tags, e.g. ``"Disease"``.

    Raises:
        CorpusFormatError: for a line that is not ``token<TAB>tag``, an invalid
            tag, an untyped tag without ``entity_type``, or a file without tokens.
    """
    path = Path(path)
    check_entity_type(entity_type)
    if path.is_dir():
        raise CorpusFormatError(f"{path} is a folder; expected an IOB file.")
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file not found: {path}")
    words: List[str] = []
    tags: List[str] = []
    first_line = 0
    n_sentences = 0
    n_orphan_inside = 0
    with path.open("rb") as file:
        for line_number, raw_bytes in enumerate(file, start=1):
            line = decode_line(path, line_number, raw_bytes, CorpusFormatError).rstrip("\r\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    n_orphan_inside += _count_orphan_inside(tags)
                    yield IobSentence(words, tags, first_line)
                    n_sentences += 1
                    words, tags = [], []
                continue
            word, tag = _parse_line(path, line_number, line, entity_type)
            if not words:
                first_line = line_number
            words.append(word)
            tags.append(tag)
    if words:
        n_orphan_inside += _count_orphan_inside(tags)
        yield IobSentence(words, tags, first_line)
        n_sentences += 1
    if n_sentences == 0:
        raise CorpusFormatError(f"{path}: no tokens found; is it an empty file?")
    if n_orphan_inside:
        logger.warning(
            "%s: %d I- tags follow O or a tag of another type; each opens a new "
            "entity, as in conlleval.",
            path,
            n_orphan_inside,
        )


def _parse_line(
    path: Path, line_number: int, line: str, entity_type: Optional[str]
) -> Tuple[str, str]:
    """Return the token and its typed tag from one ``token<TAB>tag`` line."""
    fields = line.split("\t")
    if len(fields) != 2:
        raise CorpusFormatError(
            f"{path}, line {line_number}: expected 'token<TAB>tag' (two "
            f"tab-separated fields), found {len(fields)} field(s): {line[:80]!r}. "
            "Separate token and tag with one tab; sentences with a blank line."
        )
    word, tag = fields[0], fields[1].strip()
    if not word or any(character.isspace() for character in word):
        raise CorpusFormatError(
            f"{path}, line {line_number}: invalid token {word!r}: a token must be "
            "non-empty and contain no whitespace. Put one token on each line."
        )
    if not TAG_PATTERN.match(tag):
        raise CorpusFormatError(
            f"{path}, line {line_number}: invalid tag {tag!r}; expected 'O', "
            "'B', 'I', 'B-<type>' or 'I-<type>'."
        )
    if tag in ("B", "I"):
        if not entity_type:
            raise CorpusFormatError(
                f"{path}, line {line_number}: the tag {tag!r} has no entity type. "
                "Give the type of this untyped file: entity_type = \"Disease\" in "
                "the reader's config (spacy train: --corpora.train.entity_type "
                "Disease --corpora.dev.entity_type Disease), or --entity-type "
                "Disease for python -m spacy_biobert convert."
            )
        tag = f"{tag}-{entity_type}"
    return word, tag


def check_entity_type(entity_type: Optional[str]) -> None:
    """Raise ValueError unless ``entity_type`` is None or a usable entity label."""
    if entity_type is None:
        return
    if not entity_type or entity_type == "O" or any(c.isspace() for c in entity_type):
        raise ValueError(
            f"Invalid entity type {entity_type!r}: expected a non-empty label "
            "without whitespace, other than 'O', e.g. 'Disease'."
        )


def _count_orphan_inside(tags: List[str]) -> int:
    count = 0
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            count += 1
        previous = tag
    return count


def sentence_to_doc(vocab: Vocab, sentence: IobSentence) -> Doc:
    """Build a gold Doc: tokens joined by single spaces, entities from the tags."""
    spaces = [True] * len(sentence.words)
    spaces[-1] = False
    doc = Doc(vocab, words=sentence.words, spaces=spaces)
    doc.ents = [
        Span(doc, start, end, label=label)
        for start, end, label in tags_to_spans(sentence.tags)
    ]
    return doc


def read_iob_docs(
    path: Path, vocab: Vocab, entity_type: Optional[str] = None
) -> Iterator[Doc]:
    """Yield one gold Doc per sentence of an IOB file."""
    for sentence in read_iob(path, entity_type):
        yield sentence_to_doc(vocab, sentence)
