"""The ``biobert_abbreviations`` component: abbreviations defined in the text.

A definition is a long form followed by its short form in parentheses, as in
"colorectal cancer (CRC)".  The long form is found as Schwartz and Hearst
describe in "A simple algorithm for identifying abbreviation definitions in
biomedical text" (Pacific Symposium on Biocomputing, 2003).  Every letter and
digit of the short form must appear, in order and ignoring case, in the words
before the parenthesis, and its first one must start a word.  Of all such long
forms the shortest is taken.  A short form is also marked wherever it occurs
later in the same Doc as whole tokens, with the same case.

Results go to ``doc.spans["abbreviations"]`` (the key is the ``spans_key``
setting), one span per short form, definitions and later uses together, in
text order.  ``Span._.long_form`` returns the long form of such a span, or
None.  ``find_abbreviations`` returns the same (short form, long form) pairs
from any Doc, without the component and without changing the Doc.

The link from a short form to its long form is stored as character offsets
``[short_start, short_end, long_start, long_end]`` in the span group's
``attrs["long_forms"]``.  Span group attrs travel with ``Doc.to_bytes``,
``Doc.to_disk`` and ``DocBin`` (``DocBin`` drops ``doc.user_data`` unless
``store_user_data=True``, so a Doc extension with a default value would be
lost there).  ``Span._.long_form`` is a getter that looks the span's offsets
up in every span group of its Doc, so it works on a Doc read back from bytes
and on any span with the same offsets as a marked short form.

Not taken as short forms: text in parentheses of more than two words or ten
characters, single characters, text without a letter, citations ("Smith et
al., 1995", "1995"), figure and table references ("Fig. 2"), statistics
("p < 0.05", "n = 12", "OR 1.5"), initials ("J. B.") and lower-case Roman
numerals ("ii").  A short form followed by more text ("HR, 1.5") is cut at
the first comma or semicolon.

Known shortcomings:

- Only "long form (SF)" is found.  The reverse order, "SF (long form)", is
  not.
- An abbreviation used but defined only in another document, or used before
  its definition (for example in the title), is not marked.
- The long form is a string match only.  A short form whose letters happen
  to occur in the words before it can get a wrong long form ("Pendred, the
  disease gene (PDS)").
- When no word of the real long form starts with the short form's first
  letter ("N-acetylgalactosamine-6-sulfate sulfatase (GALNS)"), the long
  form is missed or reaches back to an earlier word that does.  Letters in
  another order ("myotonic dystrophy (DM)") are missed.
- A short form that is not a whole token sequence of the Doc is skipped, so
  the tokenizer matters: spaCy's English tokenizer keeps "cancer(CRC" as one
  token, the project's ``BioTokenizer`` splits it.
- A long form must lie in the sentence of its short form.  Sentence starts
  set by an earlier component are used.  Where none are set, the rule of
  ``spacy_biobert.sentences`` decides, and a sentence it fails to split can
  give a long form that starts in the sentence before.
"""

from __future__ import annotations

import bisect
import re
import warnings
from typing import Dict, Iterable, List, Optional, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

from ..sentences import sentence_ranges

DEFAULT_SPANS_KEY = "abbreviations"
LONG_FORMS_ATTR = "long_forms"
LONG_FORM_EXTENSION = "long_form"

MIN_SHORT_FORM_CHARS = 2
MAX_SHORT_FORM_CHARS = 10
MAX_SHORT_FORM_WORDS = 2

# A stand-alone year ("1995", "2001a") marks a citation.
YEAR = re.compile(r"(?<![\w.])(1[6-9]|20)\d\d[a-z]?(?![\w.])")
ET_AL = re.compile(r"\bet\.? al\b", re.IGNORECASE)
# Parentheses that open with one of these words point somewhere else in the
# text.  Written in capitals, the same letters are abbreviations ("REF", "IE").
REFERENCE_WORDS = re.compile(
    r"^(fig|figs|figure|figures|table|tables|suppl|supplementary|ref|refs|eq|eqs|"
    r"equation|panel|see|cf|e\.g|i\.e|eg|ie)(?![^\W_])",
    re.IGNORECASE,
)
# Initials of a person's name ("J. B.").
INITIALS = re.compile(r"^([A-Z]\.\s*)+$")
# Comparisons, percentages and decimals ("p < 0.05", "n=12", "OR 1.5", "12%").
STATISTICS = re.compile(r"[=<>≤≥±%]|\d[.,·]\d")
ROMAN_NUMERAL = re.compile(r"^[ivxlc]+$")
OPENING = {"(": ")", "[": "]"}
CLOSING = {")": "(", "]": "["}

# (short form span, long form span)
AbbreviationPair = Tuple[Span, Span]


@Language.factory(
    "biobert_abbreviations",
    assigns=["doc.spans"],
    default_config={"spans_key": DEFAULT_SPANS_KEY},
)
def make_abbreviation_finder(nlp: Language, name: str, spans_key: str) -> "AbbreviationFinder":
    return AbbreviationFinder(name, spans_key=spans_key)


class AbbreviationFinder:
    """Mark abbreviations defined as "long form (SF)" and their later uses.

    Writes ``doc.spans[spans_key]``, replacing a group of that name, and
    links each span to its long form through ``Span._.long_form``.  It has
    no weights, so nothing is written to disk for it, and the pipeline's
    config stores ``spans_key``.
    """

    def __init__(self, name: str = "biobert_abbreviations", *, spans_key: str = DEFAULT_SPANS_KEY):
        if not isinstance(spans_key, str) or not spans_key.strip():
            raise ValueError(
                f"Invalid spans_key {spans_key!r} for {name!r}: expected a non-empty "
                f"name for the span group, such as {DEFAULT_SPANS_KEY!r}."
            )
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        pairs = find_abbreviations(doc)
        long_forms = [
            [short.start_char, short.end_char, long.start_char, long.end_char]
            for short, long in pairs
        ]
        doc.spans[self.spans_key] = SpanGroup(
            doc,
            name=self.spans_key,
            attrs={LONG_FORMS_ATTR: long_forms},
            spans=[short for short, _ in pairs],
        )
        return doc


def find_abbreviations(doc: Doc) -> List[AbbreviationPair]:
    """Find the defined short forms of ``doc`` and their later uses.

    Returns (short form, long form) pairs in the order of the short forms in
    the text.  A definition's own short form comes first, then each later
    whole-token, same-case occurrence of it, paired with the long form of the
    closest definition before it.  An occurrence inside a longer marked short
    form ("IL" inside "IL-6", where the tokenizer splits it) is not a use.  The
    Doc is not changed.
    """
    definitions = find_definitions(doc)
    if not definitions:
        return []

    pairs: List[AbbreviationPair] = list(definitions)
    marked = [(short.start_char, short.end_char) for short, _ in definitions]
    definitions_by_text: Dict[str, List[AbbreviationPair]] = {}
    for short, long in definitions:
        definitions_by_text.setdefault(short.text, []).append((short, long))

    # Longer short forms first, so that "IL-6" claims its text before "IL" can.
    for text in sorted(definitions_by_text, key=len, reverse=True):
        earlier = definitions_by_text[text]
        earlier_starts = [short.start_char for short, _ in earlier]
        for start in _occurrences(doc.text, text):
            end = start + len(text)
            if any(start < marked_end and marked_start < end for marked_start, marked_end in marked):
                continue
            index = bisect.bisect_left(earlier_starts, start) - 1
            if index < 0:
                continue
            use = doc.char_span(start, end)
            if use is None:
                continue
            pairs.append((use, earlier[index][1]))
            marked.append((start, end))

    pairs.sort(key=lambda pair: (pair[0].start_char, pair[0].end_char))
    return pairs


def find_definitions(doc: Doc) -> List[AbbreviationPair]:
    """Find the definitions "long form (SF)" of ``doc``, as (short form, long form) pairs.

    Both spans cover whole tokens, and the long form ends right before the
    opening parenthesis and starts in the same sentence.  The Doc is not
    changed.
    """
    text = doc.text
    token_starts = {token.idx for token in doc}
    # Sentence starts set by a component win; elsewhere the rule of spacy_biobert.sentences applies.
    sentence_starts = [doc[start].idx for start, _ in sentence_ranges(doc)] or [0]

    definitions: List[AbbreviationPair] = []
    for opening, content_start, content_end in _parenthesised(text):
        bounds = _short_form_bounds(text, content_start, content_end)
        if bounds is None:
            continue
        short_start, short_end = bounds
        short = doc.char_span(short_start, short_end)
        if short is None:
            continue

        long_end = opening
        while long_end > 0 and text[long_end - 1].isspace():
            long_end -= 1
        sentence_start = sentence_starts[bisect.bisect_right(sentence_starts, opening) - 1]
        long_start = _long_form_start(text, short.text, sentence_start, long_end, token_starts)
        if long_start is None:
            continue
        long = doc.char_span(long_start, long_end)
        if long is None or not _is_long_form(long.text, short.text):
            continue
        definitions.append((short, long))
    return definitions


def get_long_form(span: Span) -> Optional[Span]:
    """Return the long form linked to a short form with ``span``'s offsets, or None.

    Looks in the ``attrs["long_forms"]`` of every span group of the Doc, so
    a span needs the same character offsets as a marked short form, not to
    be the same object.
    """
    doc = span.doc
    for group in doc.spans.values():
        for short_start, short_end, long_start, long_end in group.attrs.get(LONG_FORMS_ATTR, ()):
            if short_start == span.start_char and short_end == span.end_char:
                return doc.char_span(long_start, long_end)
    return None


def _parenthesised(text: str) -> Iterable[Tuple[int, int, int]]:
    """Yield ``(opening, content_start, content_end)`` for each "(...)" with no "(" inside."""
    opening = text.find("(")
    while opening != -1:
        closing = text.find(")", opening + 1)
        if closing == -1:
            return
        nested = text.find("(", opening + 1, closing)
        if nested == -1:
            yield opening, opening + 1, closing
            opening = text.find("(", closing + 1)
        else:
            # The inner pair may still be a definition of its own.
            opening = nested


def _short_form_bounds(text: str, start: int, end: int) -> Optional[Tuple[int, int]]:
    """Return the character range of the short form inside "(...)", or None if it is not one."""
    content = text[start:end]
    if YEAR.search(content) or ET_AL.search(content):
        return None

    for separator in ",;":
        cut = content.find(separator)
        if cut != -1:
            content = content[:cut]
    stripped = content.strip()
    if not stripped:
        return None
    short_start = start + content.index(stripped)
    if not _is_short_form(stripped):
        return None
    return short_start, short_start + len(stripped)


def _is_short_form(candidate: str) -> bool:
    words = candidate.split()
    if not MIN_SHORT_FORM_CHARS <= len(candidate) <= MAX_SHORT_FORM_CHARS:
        return False
    if len(words) > MAX_SHORT_FORM_WORDS:
        return False
    if not candidate[0].isalnum() or not any(char.isalpha() for char in candidate):
        return False
    if REFERENCE_WORDS.match(candidate) and not words[0].isupper():
        return False
    if STATISTICS.search(candidate) or ROMAN_NUMERAL.match(candidate) or INITIALS.match(candidate):
        return False
    # Two lower-case words are a remark ("in vitro", "not shown"), not an abbreviation.
    if len(words) > 1 and candidate.islower() and not any(char.isdigit() for char in candidate):
        return False
    return True


def _long_form_start(
    text: str, short_form: str, window_start: int, window_end: int, token_starts: Set[int]
) -> Optional[int]:
    """Return where the shortest long form for ``short_form`` in ``text[window_start:window_end]`` starts.

    Matches the short form's letters and digits right to left, each at the
    nearest place to the left of the one after it.  The first one must start
    a word and a token, and the long form from there must not close a
    bracket it did not open ("IL-1) receptor" inside "interleukin-1 (IL-1)
    receptor antagonist").  Nearest matches give the latest possible start,
    so the shortest long form.
    """
    characters = [char.lower() for char in short_form if char.isalnum()]
    if not characters:
        return None

    position = window_end - 1
    for target in reversed(characters[1:]):
        while position >= window_start and text[position].lower() != target:
            position -= 1
        if position < window_start:
            return None
        position -= 1

    first = characters[0]
    while position >= window_start:
        if (
            text[position].lower() == first
            and (position == 0 or not text[position - 1].isalnum())
            and position in token_starts
            and _brackets_balanced(text, position, window_end)
        ):
            return position
        position -= 1
    return None


def _brackets_balanced(text: str, start: int, end: int) -> bool:
    stack: List[str] = []
    for char in text[start:end]:
        if char in OPENING:
            stack.append(char)
        elif char in CLOSING:
            if not stack or stack.pop() != CLOSING[char]:
                return False
    return not stack


def _is_long_form(long_form: str, short_form: str) -> bool:
    # The word limit that Schwartz and Hearst use.
    max_words = min(len(short_form) + 5, len(short_form) * 2)
    if len(long_form.split()) > max_words:
        return False
    if len(long_form) <= len(short_form):
        return False
    # A long form that contains its short form repeats it rather than spelling it out.
    return next(_occurrences(long_form, short_form), None) is None


def _occurrences(text: str, word: str) -> Iterable[int]:
    """Yield the start of each occurrence of ``word`` in ``text`` not inside a longer word."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        before = text[start - 1] if start > 0 else " "
        after = text[end] if end < len(text) else " "
        if not _continues_word(before, word[0]) and not _continues_word(after, word[-1]):
            yield start
        start = text.find(word, start + 1)


def _continues_word(neighbour: str, edge: str) -> bool:
    return neighbour.isalnum() and edge.isalnum()


def _register_extensions() -> None:
    if not Span.has_extension(LONG_FORM_EXTENSION):
        Span.set_extension(LONG_FORM_EXTENSION, getter=get_long_form)
        return
    getter = Span.get_extension(LONG_FORM_EXTENSION)[2]
    if getattr(getter, "__qualname__", None) != get_long_form.__qualname__ or (
        getattr(getter, "__module__", None) != get_long_form.__module__
    ):
        warnings.warn(
            f"Span._.{LONG_FORM_EXTENSION} is already registered by another package, so "
            "biobert_abbreviations leaves it as it is. Call "
            "spacy_biobert.pipeline.abbreviations.get_long_form(span) to read the long form.",
            stacklevel=2,
        )


_register_extensions()
