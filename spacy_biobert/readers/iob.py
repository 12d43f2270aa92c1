"""BioBERT's NER files: one ``token<TAB>tag`` line per token, a blank line between sentences.

Tags are ``O``, ``B``/``I`` (untyped, as in BioBERT's NCBI-disease and BC2GM
files) or ``B-<type>``/``I-<type>``.  Untyped tags need ``entity_type``, the
label their entities get.  CRLF line ends and a UTF-8 byte-order mark are
accepted; ``-DOCSTART-`` lines (CoNLL style) are skipped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ..tags import tags_to_spans

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
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file not found: {path}")
    words: List[str] = []
    tags: List[str] = []
    first_line = 0
    n_sentences = 0
    n_orphan_inside = 0
    with path.open(encoding="utf-8-sig", newline=None) as file:
        for line_number, raw in enumerate(file, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    n_orphan_inside += _count_orphan_inside(tags)
                    yield IobSentence(words, tags, first_line)
                    n_sentences += 1
                    words, tags = [], []
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0]:
                raise CorpusFormatError(
                    f"{path}, line {line_number}: expected 'token<TAB>tag' (two "
                    f"tab-separated fields), found {len(fields)} field(s): {line[:80]!r}. "
                    "Separate token and tag with one tab; sentences with a blank line."
                )
            word, tag = fields[0], fields[1].strip()
            if not TAG_PATTERN.match(tag):
                raise CorpusFormatError(
                    f"{path}, line {line_number}: invalid tag {tag!r}; expected 'O', "
                    "'B', 'I', 'B-<type>' or 'I-<type>'."
                )
            if tag in ("B", "I"):
                if not entity_type:
                    raise CorpusFormatError(
                        f"{path}, line {line_number}: the tag {tag!r} has no entity "
                        "type. Give the type for this untyped file, e.g. "
                        "entity_type = \"Disease\" in the reader's config or "
                        "--entity-type Disease on the command line."
                    )
                tag = f"{tag}-{entity_type}"
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
