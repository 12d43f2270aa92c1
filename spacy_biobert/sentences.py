"""Sentence boundaries for abstracts, close to the sentences of BioBERT's NER files.

BioBERT's training files contain one sentence per block, so a model trained on
them has only seen one sentence at a time.  Reading raw abstracts sentence by
sentence gives it the same context.

The rule: a sentence ends after ``.``, ``?`` or ``!`` when whitespace follows
and the next token starts with an upper-case letter, a digit or an opening
bracket, except

- inside brackets: ``(P <. 001)`` and ``(7. 5%)``, as NCBI-disease writes some
  numbers, stay whole;
- before a digit, when the token before the stop is not a word or number
  (``P =. 03``);
- after a common abbreviation (``e.g.``, ``et al.``, ``Fig.``).

A stop after a single capital letter ends the sentence (``type I. We``), as
in BioBERT's files, so initials (``J. B. Smith``) are split too.  On the
97 NCBI-disease test abstracts that align with BioBERT's test file, the rule
finds 915 of its 918 sentence starts and no extra boundaries.

Sentence boundaries set by an earlier pipeline component (a parser, a
``senter`` or a ``sentencizer``) take precedence over this rule.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

from spacy.attrs import IDX, IS_SPACE, LENGTH, SENT_START, SPACY
from spacy.tokens import Doc

SENTENCE_STOPS = frozenset(".?!")
# Words that end with a period without ending the sentence, compared in lower case.
# The letters of "e.g." and "i.e." are checked as written, so "type I." still ends one.
ABBREVIATIONS = frozenset(
    "al approx ca cf dr eg etc fig figs ie inc mr mrs ms no nos prof ref refs "
    "resp sp spp st vs viz vol".split()
)
OPENING_BRACKETS = frozenset("([{")
CLOSING_BRACKETS = frozenset(")]}")
# A bracket still open after this many tokens is taken to be unclosed, so that
# sentences after it are still found.
MAX_BRACKET_TOKENS = 60


def sentence_ranges(doc: Doc) -> List[Tuple[int, int]]:
    """Return the token ranges ``(start, end)`` of the sentences of ``doc``, in order.

    A token's own ``is_sent_start``, when a component has set it to True or
    False, decides; the rule of this module decides where it is unset.  An
    empty Doc has no sentences.
    """
    if len(doc) == 0:
        return []
    tokens = _token_facts(doc)
    starts = [0]
    depth = 0
    opened_at = 0
    last_word = -1
    for i, token in enumerate(tokens):
        if i > 0:
            if token.is_sent_start is None:
                if depth == 0 and not token.is_space and _starts_sentence(tokens, i, last_word):
                    starts.append(i)
            elif token.is_sent_start:
                starts.append(i)
        if token.text in OPENING_BRACKETS:
            opened_at = i if depth == 0 else opened_at
            depth += 1
        elif token.text in CLOSING_BRACKETS:
            depth = max(depth - 1, 0)
        if depth and i - opened_at > MAX_BRACKET_TOKENS:
            depth = 0  # an unclosed bracket
        if not token.is_space:
            last_word = i
    ends = starts[1:] + [len(doc)]
    return list(zip(starts, ends))


class _TokenFacts(NamedTuple):
    text: str
    has_whitespace: bool
    is_space: bool
    is_sent_start: Optional[bool]


def _token_facts(doc: Doc) -> List[_TokenFacts]:
    # Read from one array rather than from Token objects, because building a
    # Token per access made this rule a visible share of tagging time.
    array = doc.to_array([IDX, LENGTH, SPACY, IS_SPACE, SENT_START]).astype("int64")
    text = doc.text
    return [
        _TokenFacts(text[idx : idx + length], bool(spacy), bool(is_space), _SENT_START[sent_start])
        for idx, length, spacy, is_space, sent_start in array.tolist()
    ]


# SENT_START in Doc arrays: 1 starts a sentence, -1 does not, 0 is unset.
_SENT_START = {1: True, -1: False, 0: None}


def _starts_sentence(tokens: List[_TokenFacts], i: int, stop_index: int) -> bool:
    """Tell whether token ``i`` starts a sentence; ``stop_index`` is the last non-space token before it."""
    if stop_index < 0:
        return False
    stop = tokens[stop_index]
    spaced = stop.has_whitespace or stop_index < i - 1
    if stop.text not in SENTENCE_STOPS or not spaced:
        return False
    first = tokens[i].text[0]
    if not (first.isupper() or first.isdigit() or first in OPENING_BRACKETS):
        return False
    if stop_index == 0:
        return True
    before = tokens[stop_index - 1]
    if before.is_space:
        return True
    if first.isdigit() and not before.text.isalnum():
        return False
    if stop.text != ".":
        return True
    word = before.text
    return word not in ("e", "g") and word.lower() not in ABBREVIATIONS
