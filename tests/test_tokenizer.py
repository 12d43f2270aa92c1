"""spacy_biobert.BioTokenizer.v1: BioBERT's token boundaries, exact text, save and load."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.attrs import ORTH
from spacy.tokenizer import Tokenizer

from spacy_biobert.readers.iob import read_iob
from spacy_biobert.tokenizer import build_bio_tokenizer

BIO_TOKENIZER_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}


@pytest.fixture(scope="module")
def nlp():
    # Built from the config, so this also checks the entry point.
    return spacy.blank("en", config=BIO_TOKENIZER_CONFIG)


def words(nlp, text: str) -> List[str]:
    return [token.text for token in nlp(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ataxia-telangiectasia", ["ataxia", "-", "telangiectasia"]),
        ("IL-2", ["IL", "-", "2"]),
        ("2p13-p16", ["2p13", "-", "p16"]),
        ("Na+", ["Na", "+"]),
        ("Na+/K+-ATPase", ["Na", "+", "/", "K", "+", "-", "ATPase"]),
        ("[Ca2+]i", ["[", "Ca2", "+", "]", "i"]),
        ("4 mg/kg", ["4", "mg", "/", "kg"]),
        ("(A-T)", ["(", "A", "-", "T", ")"]),
        ("((BRCA1))", ["(", "(", "BRCA1", ")", ")"]),
        ("0.5", ["0", ".", "5"]),
        ("SD = 0.049 +/- 0.043 mg", ["SD", "=", "0", ".", "049", "+", "/", "-", "0", ".", "043", "mg"]),
        ("1,000", ["1", ",", "000"]),
        ("40%", ["40", "%"]),
        ("p<0.05", ["p", "<", "0", ".", "05"]),
        ("cancer.", ["cancer", "."]),
        ("e.g. BRCA1.", ["e", ".", "g", ".", "BRCA1", "."]),
        ("disease:", ["disease", ":"]),
        ("a; b", ["a", ";", "b"]),
        ("786-0", ["786", "-", "0"]),
        ("5'", ["5", "'"]),
        ("5'-UTR", ["5", "'", "-", "UTR"]),
        ("Crohn's disease", ["Crohn", "'", "s", "disease"]),
        ("don't", ["don", "'", "t"]),
        ('"plus"', ['"', "plus", '"']),
        ("a--b", ["a", "-", "-", "b"]),
        ("--", ["-", "-"]),
        ("-", ["-"]),
        ("(((", ["(", "(", "("]),
        ("x_y", ["x", "_", "y"]),
        ("C282Y", ["C282Y"]),
        ("α-tocopherol", ["α", "-", "tocopherol"]),
        ("TNF-α", ["TNF", "-", "α"]),
        ("β2-microglobulin", ["β2", "-", "microglobulin"]),
        ("10 µg", ["10", "µg"]),
        ("37°C ±2", ["37", "°", "C", "±", "2"]),
        ("10⁻³ m²", ["10", "⁻", "³", "m²"]),
        ("http://x.org", ["http", ":", "/", "/", "x", ".", "org"]),
    ],
)
def test_tokens_match_biobert_files(nlp, text, expected):
    assert words(nlp, text) == expected


def test_combining_marks_stay_with_their_base(nlp):
    decomposed = "cafe\u0301 -\u0301x"
    assert words(nlp, decomposed) == ["cafe\u0301", "-\u0301", "x"]
    assert unicodedata.category("\u0301") == "Mn"


def test_whitespace_becomes_space_tokens(nlp):
    doc = nlp("  a  b \n\nc ")
    assert [token.text for token in doc] == ["  ", "a", " ", "b", "\n\n", "c"]
    assert [token.is_space for token in doc] == [True, False, True, False, True, False]
    assert doc[-1].whitespace_ == " "


def test_empty_string_gives_empty_doc(nlp):
    doc = nlp("")
    assert len(doc) == 0
    assert doc.text == ""


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n",
        "\t\r\n \u00a0\u2028\u3000",
        "a\x00b\x07c\x1b[0m",
        "\x85\x1c\x1d\x1e\x1f",
        "❤️ 👍🏽 👨‍👩‍👧 🇩🇪",
        "\ufeffBOM and \u200bzero\u200dwidth\u2060",
        "مرض السكري",
        "糖尿病 (DM)",
        "हिन्दी-भाषा",
        "\U0010ffff\U000e0001\ue000",
        "ﬁne ﬂ Ⅻ ½",
        "  leading and trailing  ",
        "a" * 5000 + "-" + "b" * 5000,
    ],
)
def test_text_is_preserved(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    assert "".join(token.text_with_ws for token in doc) == text


def _is_word_character(character: str) -> bool:
    return character.isalnum() or unicodedata.category(character).startswith("M")


@lru_cache(maxsize=1)
def _bio_nlp():
    return spacy.blank("en", config=BIO_TOKENIZER_CONFIG)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_preserved_and_split(text):
    doc = _bio_nlp()(text)
    assert doc.text == text
    for token in doc:
        if token.is_space:
            assert token.text.isspace()
        elif _is_word_character(token.text[0]):
            assert all(_is_word_character(character) for character in token.text)
        else:
            rest = token.text[1:]
            assert all(unicodedata.category(character).startswith("M") for character in rest)
    for left, right in zip(doc, doc[1:]):
        # A word ends only at whitespace or punctuation.
        touching = not left.whitespace_ and not left.is_space and not right.is_space
        if touching and _is_word_character(left.text[0]):
            assert not _is_word_character(right.text[0])


def test_special_case_can_be_added(tmp_path):
    nlp = spacy.blank("en", config=BIO_TOKENIZER_CONFIG)
    nlp.tokenizer.add_special_case("e.g.", [{ORTH: "e.g."}])
    assert words(nlp, "e.g. IL-2") == ["e.g.", "IL", "-", "2"]

    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    assert words(reloaded, "e.g. IL-2") == ["e.g.", "IL", "-", "2"]


ROUND_TRIP_TEXTS = [
    "Germline mutations in BRCA1 (17q21) predispose to breast/ovarian cancer.",
    "Na+/K+-ATPase; 0.5 mg/kg; 2p13-p16; 5'-UTR; Crohn's -- TNF-α ±2 °C",
    "cafe\u0301 ❤️ a\x00b\n\n  end ",
]


def test_pipeline_save_and_load(tmp_path):
    nlp = spacy.blank("en", config=BIO_TOKENIZER_CONFIG)
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")

    assert reloaded.config["nlp"]["tokenizer"] == {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}
    for text in ROUND_TRIP_TEXTS:
        assert words(reloaded, text) == words(nlp, text)
        assert reloaded(text).text == text


def test_saved_rules_need_no_package_code():
    # spaCy stores the rules as regex patterns and recompiles them with re.compile,
    # so a plain Tokenizer restored from the bytes splits the same way.
    nlp = spacy.blank("en")
    bio_tokenizer = build_bio_tokenizer(nlp.vocab)
    restored = Tokenizer(nlp.vocab).from_bytes(bio_tokenizer.to_bytes())
    for text in ROUND_TRIP_TEXTS:
        assert [t.text for t in restored(text)] == [t.text for t in bio_tokenizer(text)]


def _read_pubtator(path: Path) -> Iterator[Tuple[str, List[Tuple[int, int]]]]:
    """Yield (title + " " + abstract, mention offsets) for each document."""
    title = ""
    text = None
    mentions: List[Tuple[int, int]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if "|t|" in line[:40]:
            if text is not None:
                yield text, mentions
            title, text, mentions = line.split("|", 2)[2], None, []
        elif "|a|" in line[:40]:
            text = f"{title} {line.split('|', 2)[2]}"
        elif line.strip():
            fields = line.split("\t")
            if len(fields) >= 5 and fields[1].isdigit():
                mentions.append((int(fields[1]), int(fields[2])))
    if text is not None:
        yield text, mentions


@pytest.mark.integration
def test_ncbi_test_mentions_align(shared_data, nlp):
    path = shared_data / "ncbi_disease/pubtator/NCBItestset_corpus.txt"
    n_mentions = 0
    misaligned = []
    for text, mentions in _read_pubtator(path):
        doc = nlp(text)
        for start, end in mentions:
            n_mentions += 1
            if doc.char_span(start, end) is None:
                misaligned.append(text[start:end])
    assert n_mentions == 960
    assert misaligned == []


@pytest.mark.integration
def test_ncbi_test_iob_tokens_reproduced(shared_data, nlp):
    path = shared_data / "ncbi_disease/iob/test.tsv"
    differing = []
    for sentence in read_iob(path, entity_type="Disease"):
        tokens = words(nlp, " ".join(sentence.words))
        if tokens != sentence.words:
            differing.append(sentence.line)
    assert differing == []
