"""Sentence boundaries for abstracts, close to the sentences of BioBERT's NER files.

BioBERT's training files hold one sentence per block, so a model trained on
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
NCBI-disease test abstracts, 915 of the 918 sentence starts of BioBERT's test
file are found, and no other.

Sentence boundaries set by an earlier pipeline component (a parser, a
``senter`` or a ``sentencizer``) take precedence over this rule.
"""

from __future__ import annotations

from typing import List, Tuple

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


def sentence_ranges(doc: Doc) -> List[Tuple[int, int]]:
    """Return the token ranges ``(start, end)`` of the sentences of ``doc``, in order.

    Uses the Doc's own sentence boundaries when a component has set them, and
    otherwise the rule of this module.  An empty Doc has no sentences.
    """
    if len(doc) == 0:
        return []
    if doc.has_annotation("SENT_START"):
        return [(sentence.start, sentence.end) for sentence in doc.sents]
    starts = [0]
    depth = 0
    for i in range(1, len(doc)):
        previous = doc[i - 1].text
        if previous in OPENING_BRACKETS:
            depth += 1
        elif previous in CLOSING_BRACKETS:
            depth = max(depth - 1, 0)
        if depth == 0 and _starts_sentence(doc, i):
            starts.append(i)
    ends = starts[1:] + [len(doc)]
    return list(zip(starts, ends))


def _starts_sentence(doc: Doc, i: int) -> bool:
    stop = doc[i - 1]
    if stop.text not in SENTENCE_STOPS or not stop.whitespace_:
        return False
    first = doc[i].text[0]
    if not (first.isupper() or first.isdigit() or first in OPENING_BRACKETS):
        return False
    if i < 2:
        return True
    before = doc[i - 2]
    if first.isdigit() and not before.text.isalnum():
        return False
    if stop.text != "." or before.whitespace_:
        return True
    word = before.text
    return word not in ("e", "g") and word.lower() not in ABBREVIATIONS
