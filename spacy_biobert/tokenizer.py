"""A tokenizer whose token boundaries match BioBERT's NER files.

Use it in a config as::

    [nlp.tokenizer]
    @tokenizers = "spacy_biobert.BioTokenizer.v1"

In BioBERT's NCBI-disease and BC5CDR files every token is either a run of
ASCII letters and digits (``BRCA1``, ``15q11``, ``C282Y``) or a single
punctuation character, so this tokenizer splits text the same way:

- A word is a run of letters, digits and combining marks, in any script:
  ``IL-2`` gives ``IL - 2``, ``2p13-p16`` gives ``2p13 - p16``, ``Na+`` gives
  ``Na +`` and ``α-tocopherol`` gives ``α - tocopherol``.  Letters and digits
  are the characters for which ``str.isalnum()`` is true, so Greek letters,
  ``µ``, ``ß`` and superscript digits are word characters.  A word is never
  split between a letter and a digit (``Ca2+`` gives ``Ca2 +``), as in
  BioBERT's files, so a gold mention ``Ca`` inside ``Ca2+`` cannot align.
- Every other character that is not whitespace is a token of its own,
  together with any combining marks right after it: hyphens, slashes,
  brackets, quotes, ``+``, ``=``, ``%``, ``°``, ``±``, the underscore, symbols,
  emoji and control characters.  So ``0.5`` gives ``0 . 5`` and ``--`` gives
  ``- -``, as in BioBERT's files.  The period of an abbreviation (``e.g.``),
  an apostrophe (``Crohn's``, ``5'``) and the parts of a URL are split too.
- Whitespace separates tokens.  As in every spaCy tokenizer, one space after a
  token is stored as its trailing whitespace and any other whitespace becomes
  a token of its own (``token.is_space``), so ``doc.text`` is the input.
  NOTE: a string with a lone surrogate (``"\\ud800"``) raises
  ``UnicodeEncodeError``, as it does with spaCy's default tokenizer.

There are no special cases (``don't`` gives ``don ' t``), but
``add_special_case`` works on the tokenizer and the cases are saved with it.
An emoji sequence joined by zero-width joiners or with a skin-tone modifier
splits into its characters.

The rules are the prefix, suffix and infix patterns of spaCy's
``Tokenizer``, so ``nlp.to_disk`` saves them and ``spacy.load`` restores them
from the saved pipeline.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Callable, List, Tuple

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex
from spacy.vocab import Vocab


def _combining_mark_ranges() -> str:
    """Build a regex character-class body for every combining mark (Mn, Mc, Me)."""
    ranges: List[Tuple[int, int]] = []
    for code_point in range(sys.maxunicode + 1):
        if not unicodedata.category(chr(code_point)).startswith("M"):
            continue
        if ranges and ranges[-1][1] == code_point - 1:
            ranges[-1] = (ranges[-1][0], code_point)
        else:
            ranges.append((code_point, code_point))
    return "".join(
        _escape(first) if first == last else f"{_escape(first)}-{_escape(last)}"
        for first, last in ranges
    )


def _escape(code_point: int) -> str:
    return f"\\u{code_point:04x}" if code_point <= 0xFFFF else f"\\U{code_point:08x}"


# Built from the running Python's Unicode database (Unicode 14.0 in Python 3.11);
# a saved pipeline keeps the patterns it was saved with.
COMBINING_MARKS = _combining_mark_ranges()

# One punctuation token: a character that is not a letter, digit, combining mark
# or whitespace (the underscore counts, although ``\w`` matches it), with the
# combining marks that follow it.
PUNCTUATION_PATTERN = rf"(?:[^\w\s{COMBINING_MARKS}]|_)[{COMBINING_MARKS}]*"


def build_bio_tokenizer(vocab: Vocab) -> Tokenizer:
    """Build a spaCy ``Tokenizer`` that splits off every punctuation character."""
    return Tokenizer(
        vocab,
        rules={},
        prefix_search=compile_prefix_regex([PUNCTUATION_PATTERN]).search,
        suffix_search=compile_suffix_regex([PUNCTUATION_PATTERN]).search,
        infix_finditer=compile_infix_regex([PUNCTUATION_PATTERN]).finditer,
    )


def create_bio_tokenizer() -> Callable[[Language], Tokenizer]:
    """Return the ``[nlp.tokenizer]`` factory ``spacy_biobert.BioTokenizer.v1``."""

    def make_tokenizer(nlp: Language) -> Tokenizer:
        return build_bio_tokenizer(nlp.vocab)

    return make_tokenizer
