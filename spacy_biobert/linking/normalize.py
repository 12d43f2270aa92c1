"""String normalization of names, so that spelling variants share one lookup key.

Each step is a function from string to string and has a name, so a caller
(the linker, the benchmark) can switch steps on and off one by one.
:func:`normalize` applies the chosen steps in the fixed order of ``STEPS``:

- ``"nfkc"``: Unicode NFKC, which turns ligatures, full-width forms and
  superscript digits into their plain forms (``ﬁ`` -> ``fi``, ``²`` -> ``2``).
- ``"casefold"``: :meth:`str.casefold`, a lower-casing that also folds ``ß`` to ``ss``.
- ``"punctuation"``: drop a possessive ``'s`` (``Crohn's`` -> ``Crohn``), turn
  every other character that is not a letter, digit or combining diacritical
  mark (U+0300 to U+036F) into a space (hyphens, dashes, slashes, brackets,
  ``+``, ``_``), split letters from digits (``IL2`` and ``IL-2`` both give
  ``IL 2``) and collapse runs of whitespace.
- ``"spelling"``: British to American spelling inside words (``ae`` and
  ``oe`` to ``e`` before a letter, ``our`` to ``or`` at the end of a word or
  before a final ``s``): ``anaemia`` -> ``anemia``, ``tumours`` -> ``tumors``.
- ``"plural"``: a crude singular of each alphabetic word of 4 or more
  characters: ``-ies`` -> ``-y``, ``-sses`` -> ``-ss``, and a final ``s`` is
  dropped unless the word ends in ``ss``, ``us`` or ``is``.

:func:`word_order_key` is the key that ignores word order: the normalized
words, less a few function words (``of``, ``the``, ``a``, ``an``, ``in``),
sorted.  ``"cancer of the breast"`` and ``"breast cancer"`` share it.

The keys are for lookup, not for display: they may not be words
(``diabetes`` -> ``diabete``, ``aeruginosa`` -> ``eruginosa``).  Because names
and entities go through the same steps, such a key still matches.

Known shortcomings: the plural rule is English suffix stripping, so it misses
irregular plurals (``metastases``/``metastasis``, ``carcinomata``) and can
merge distinct words whose keys collide.  Case folding merges acronyms
that differ only in case (``Pb`` lead, ``PB`` phenobarbital).  Keeping the
case of short words was tried, and it lost as many BC5CDR links as it
gained.  The word-order key drops ``in``, so ``"X in Y"`` and ``"Y X"`` share
a key.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Dict, Iterable, Sequence, Tuple

# The order in which normalize() applies the steps, whatever order a caller lists them in.
STEPS: Tuple[str, ...] = ("nfkc", "casefold", "punctuation", "spelling", "plural")

# Words that the word-order key leaves out.  "and", "or" and "with" stay, because
# they change what a name means ("breast and ovarian cancer" is a composite mention).
WORD_ORDER_STOP_WORDS = frozenset({"of", "the", "a", "an", "in"})

# A plural is stripped only from words at least this long, so "AIDS" -> "aid"
# happens but "CHS" or "gas" are left alone.
MIN_PLURAL_LENGTH = 4

POSSESSIVE = re.compile(r"(?<=\w)['\u2019\u02bc]s\b")
# Not a letter, digit or combining diacritical mark.  The underscore is a \w
# character in Python, so it is listed separately.
NOT_WORD = re.compile(r"[^\w\u0300-\u036f]|_")
LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
WHITESPACE = re.compile(r"\s+")
# A digraph before another letter only, so "toe" and "canoe" keep their "oe".
BRITISH_DIGRAPH = re.compile(r"(?:ae|oe)(?=[^\W\d_])")
BRITISH_OUR = re.compile(r"(?<=\w\w)our(?=s?\b)")


def nfkc(text: str) -> str:
    """Apply Unicode NFKC normalization."""
    return unicodedata.normalize("NFKC", text)


def casefold(text: str) -> str:
    """Fold case with :meth:`str.casefold`."""
    return text.casefold()


def unify_punctuation(text: str) -> str:
    """Replace punctuation and symbols with spaces, split letters from digits, collapse whitespace."""
    text = POSSESSIVE.sub("", text)
    text = NOT_WORD.sub(" ", text)
    text = LETTER_DIGIT.sub(" ", text)
    return WHITESPACE.sub(" ", text).strip()


def americanize(text: str) -> str:
    """Rewrite British spellings (``ae``, ``oe``, a final ``our``) the American way."""
    words = []
    for word in text.split(" "):
        if word.isalpha() and word.islower():
            word = BRITISH_DIGRAPH.sub("e", word)
            word = BRITISH_OUR.sub("or", word)
        words.append(word)
    return " ".join(words)


def singularize_word(word: str) -> str:
    """Return a crude singular of one word (see the module docstring for the rules)."""
    if len(word) < MIN_PLURAL_LENGTH or not word.isalpha():
        return word
    lower = word.lower()
    if lower.endswith("ies") and len(word) > MIN_PLURAL_LENGTH:
        return word[:-3] + ("Y" if word[-1].isupper() else "y")
    if lower.endswith("sses"):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def singularize(text: str) -> str:
    """Singularize each space-separated word of ``text``."""
    return " ".join(singularize_word(word) for word in text.split(" "))


STEP_FUNCTIONS: Dict[str, Callable[[str], str]] = {
    "nfkc": nfkc,
    "casefold": casefold,
    "punctuation": unify_punctuation,
    "spelling": americanize,
    "plural": singularize,
}


def check_steps(steps: Iterable[str]) -> Tuple[str, ...]:
    """Return the steps in application order, or raise ValueError for an unknown step."""
    steps = list(steps)
    unknown = [step for step in steps if step not in STEP_FUNCTIONS]
    if unknown:
        raise ValueError(
            f"Unknown normalization step(s) {unknown}; expected any of {', '.join(STEPS)}."
        )
    return tuple(step for step in STEPS if step in steps)


def normalize(text: str, steps: Sequence[str] = STEPS) -> str:
    """Apply the normalization ``steps`` to ``text``, in the order of ``STEPS``.

    Without the ``"punctuation"`` step, surrounding whitespace is still stripped
    and inner runs of whitespace still become one space.
    """
    for step in check_steps(steps):
        text = STEP_FUNCTIONS[step](text)
    return WHITESPACE.sub(" ", text).strip()


def word_order_key(normalized: str) -> str:
    """Return the sorted words of an already normalized name, less ``WORD_ORDER_STOP_WORDS``.

    Returns ``""`` when fewer than two words remain, because a one-word key
    adds nothing to the normalized lookup and could map a lone "cancer" left
    over from "cancer of the" to a longer name.
    """
    words = [word for word in normalized.split(" ") if word.casefold() not in WORD_ORDER_STOP_WORDS]
    if len(words) < 2:
        return ""
    return " ".join(sorted(words))
