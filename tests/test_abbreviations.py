"""The biobert_abbreviations component: short forms defined as "long form (SF)" and their later uses."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc, DocBin

# Imported for the factory and the Span._.long_form extension, which entry
# points do not register yet.
from spacy_biobert.pipeline.abbreviations import (
    AbbreviationFinder,
    find_abbreviations,
    find_definitions,
    get_long_form,
)


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_abbreviations")
    return nlp


def pairs_of(doc, key="abbreviations"):
    """Return ``(short text, short start, long text, long start)`` for each span of the group."""
    return [
        (span.text, span.start_char, span._.long_form.text, span._.long_form.start_char)
        for span in doc.spans[key]
    ]


def test_definition_and_later_uses(nlp):
    text = "Patients with colorectal cancer (CRC) were studied. CRC risk rose in CRC patients."
    doc = nlp(text)

    assert pairs_of(doc) == [
        ("CRC", 33, "colorectal cancer", 14),
        ("CRC", 52, "colorectal cancer", 14),
        ("CRC", 69, "colorectal cancer", 14),
    ]
    long_form = doc.spans["abbreviations"][0]._.long_form
    assert long_form.end_char == 31
    assert text[33:36] == "CRC"


def test_span_group_attrs_hold_offsets(nlp):
    doc = nlp("Patients with colorectal cancer (CRC) had CRC.")

    assert doc.spans["abbreviations"].attrs["long_forms"] == [
        [33, 36, 14, 31],
        [42, 45, 14, 31],
    ]


def test_multiple_abbreviations(nlp):
    doc = nlp(
        "We measured tumour necrosis factor (TNF) and interleukin 6 (IL-6) in serum. "
        "TNF rose, IL-6 fell and TNF stayed high."
    )

    assert pairs_of(doc) == [
        ("TNF", 36, "tumour necrosis factor", 12),
        ("IL-6", 60, "interleukin 6", 45),
        ("TNF", 76, "tumour necrosis factor", 12),
        ("IL-6", 86, "interleukin 6", 45),
        ("TNF", 100, "tumour necrosis factor", 12),
    ]


def test_parentheses_inside_long_form(nlp):
    doc = nlp("The interleukin-1 (IL-1) receptor antagonist (IL-1Ra) binds IL-1.")

    assert pairs_of(doc) == [
        ("IL-1", 19, "interleukin-1", 4),
        ("IL-1Ra", 46, "interleukin-1 (IL-1) receptor antagonist", 4),
        ("IL-1", 60, "interleukin-1", 4),
    ]


def test_hyphens_and_digits_in_long_form(nlp):
    doc = nlp(
        "Patients got interleukin-1 receptor antagonist (IL-1Ra) or "
        "5-fluorouracil (5-FU) plus leucovorin (LV). 5-FU and LV were stopped."
    )

    assert pairs_of(doc) == [
        ("IL-1Ra", 48, "interleukin-1 receptor antagonist", 13),
        ("5-FU", 75, "5-fluorouracil", 59),
        ("LV", 98, "leucovorin", 86),
        ("5-FU", 103, "5-fluorouracil", 59),
        ("LV", 112, "leucovorin", 86),
    ]


def test_long_form_starts_mid_sentence(nlp):
    doc = nlp("In this large study, colorectal cancer (CRC) was common.")

    assert pairs_of(doc) == [("CRC", 40, "colorectal cancer", 21)]


def test_long_form_is_shortest_match(nlp):
    # "Chronic renal cancer" spells C-R-C too, but the match nearest to the
    # parenthesis wins.
    doc = nlp("Chronic renal cancer and colorectal cancer (CRC) differ.")

    assert pairs_of(doc) == [("CRC", 44, "colorectal cancer", 25)]


def test_long_form_stays_in_sentence(nlp):
    # D before M needs "dystrophy." of the previous sentence.
    doc = nlp("The gene causes myotonic dystrophy. Myotonic dystrophy (DM) is common.")

    assert list(doc.spans["abbreviations"]) == []


def test_sentence_starts_from_component_win():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Data came from the trial. factor (TF) rose.")
    finder = AbbreviationFinder()

    # The sentence rule does not split before a lower-case word, so the long
    # form may reach back into "trial.".
    assert pairs_of(finder(doc)) == [("TF", 34, "trial. factor", 19)]

    doc = nlp.make_doc("Data came from the trial. factor (TF) rose.")
    for token in doc:
        token.is_sent_start = token.i in (0, 6)
    assert doc[6].text == "factor"
    assert list(finder(doc).spans["abbreviations"]) == []


@pytest.mark.parametrize(
    "text",
    [
        "As seen multiple times in humans (Smith, 1995).",
        "Smith and coworkers tested it (Smith et al., 1995).",
        "It was first described in 1995 (1995).",
        "Fibroblast growth increased greatly over 2 days (Fig. 2).",
        "Tumours treated with taxol became large in 1 case (Table 1).",
        "The probability rose to 0.05 (p<0.05).",
        "Pairs differed in each dose group (p < 0.05).",
        "A number of 12 (n=12).",
        "We enrolled a number of patients (n = 12).",
        "The odds ratio of 1.5 (OR 1.5).",
        "Twelve cases (12) were seen.",
        "Arteries were affected (A).",
        "Johnson's brother (J. B.) was ill.",
        "It was identified in (ii) cases.",
        "Cells were incubated in Vitrogen (in vitro).",
        "Numbers of the study showed none (not shown).",
        "Sera seen early before lowering (see below).",
        "Deletion of the long arm of chromosome 5 (data not shown in this paper).",
    ],
)
def test_non_abbreviations_not_taken(nlp, text):
    doc = nlp(text)

    assert find_definitions(doc) == []
    assert list(doc.spans["abbreviations"]) == []


def test_short_form_cut_at_comma(nlp):
    doc = nlp("The hazard ratio (HR, 1.5; 95% CI 1.1-2.0) was high.")

    assert pairs_of(doc) == [("HR", 18, "hazard ratio", 4)]


def test_capital_reference_word_is_short_form(nlp):
    doc = nlp("We used restriction endonuclease fingerprinting (REF).")

    assert pairs_of(doc) == [("REF", 49, "restriction endonuclease fingerprinting", 8)]


def test_no_match_inside_other_words(nlp):
    doc = nlp("Colorectal cancer (CRC) differs: CRCs, pCRC, crc, CRC1 and CRC-related CRC.")

    assert pairs_of(doc) == [
        ("CRC", 19, "Colorectal cancer", 0),
        ("CRC", 59, "Colorectal cancer", 0),
        ("CRC", 71, "Colorectal cancer", 0),
    ]


def test_shorter_form_not_marked_inside_longer():
    nlp = spacy.blank(
        "en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}
    )
    doc = nlp.make_doc("Both interleukin (IL) and interleukin 6 (IL-6) rose. IL-6 and IL fell.")
    assert [token.text for token in doc[15:18]] == ["IL", "-", "6"]

    pairs = [(short.text, short.start_char, long.text) for short, long in find_abbreviations(doc)]

    assert pairs == [
        ("IL", 18, "interleukin"),
        ("IL-6", 41, "interleukin 6"),
        ("IL-6", 53, "interleukin 6"),
        ("IL", 62, "interleukin"),
    ]


def test_use_before_definition_not_marked(nlp):
    doc = nlp("CRC screening. Colorectal cancer (CRC) screening saves lives.")

    assert pairs_of(doc) == [("CRC", 34, "Colorectal cancer", 15)]


def test_redefined_short_form_takes_nearest(nlp):
    doc = nlp(
        "Angelman syndrome (AS) is rare. AS is imprinted. "
        "Ankylosing spondylitis (AS) is common. AS affects joints."
    )

    assert pairs_of(doc) == [
        ("AS", 19, "Angelman syndrome", 0),
        ("AS", 32, "Angelman syndrome", 0),
        ("AS", 73, "Ankylosing spondylitis", 49),
        ("AS", 88, "Ankylosing spondylitis", 49),
    ]


def test_doc_without_abbreviations(nlp):
    doc = nlp("The patients (all adults) were treated with aspirin.")

    assert len(doc.spans["abbreviations"]) == 0
    assert doc.spans["abbreviations"].attrs["long_forms"] == []
    assert doc[1:2]._.long_form is None


def test_empty_doc(nlp):
    doc = nlp("")

    assert len(doc.spans["abbreviations"]) == 0
    assert find_abbreviations(doc) == []


def test_unicode_text(nlp):
    doc = nlp("α-synuclein (α-syn) aggregates, and colorectal\u00a0cancer\u00a0(CRC) too. α-syn and CRC.")

    assert pairs_of(doc) == [
        ("α-syn", 13, "α-synuclein", 0),
        ("CRC", 55, "colorectal\u00a0cancer", 36),
        ("α-syn", 65, "α-synuclein", 0),
        ("CRC", 75, "colorectal\u00a0cancer", 36),
    ]


def test_find_abbreviations_leaves_doc_unchanged():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Colorectal cancer (CRC) and CRC.")

    pairs = find_abbreviations(doc)

    assert [(short.text, short.start_char, long.text) for short, long in pairs] == [
        ("CRC", 19, "Colorectal cancer"),
        ("CRC", 28, "Colorectal cancer"),
    ]
    assert "abbreviations" not in doc.spans
    assert doc[5:6]._.long_form is None


def test_long_form_found_by_offsets(nlp):
    doc = nlp("Colorectal cancer (CRC) and CRC.")

    span = doc.char_span(28, 31)
    assert span._.long_form.text == "Colorectal cancer"
    assert get_long_form(span).text == "Colorectal cancer"
    assert doc.char_span(0, 10)._.long_form is None


def test_doc_bytes_round_trip(nlp):
    doc = nlp("Colorectal cancer (CRC) and CRC. Tumour necrosis factor (TNF).")

    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())

    assert pairs_of(restored) == [
        ("CRC", 19, "Colorectal cancer", 0),
        ("CRC", 28, "Colorectal cancer", 0),
        ("TNF", 57, "Tumour necrosis factor", 33),
    ]


def test_docbin_round_trip(nlp):
    docs = [nlp("Colorectal cancer (CRC) and CRC."), nlp("No abbreviations here.")]

    restored = list(DocBin(docs=docs).from_bytes(DocBin(docs=docs).to_bytes()).get_docs(nlp.vocab))

    assert pairs_of(restored[0]) == [
        ("CRC", 19, "Colorectal cancer", 0),
        ("CRC", 28, "Colorectal cancer", 0),
    ]
    assert len(restored[1].spans["abbreviations"]) == 0


def test_pipeline_save_and_load(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_abbreviations", config={"spans_key": "short_forms"})
    nlp.to_disk(tmp_path / "pipeline")

    loaded = spacy.load(tmp_path / "pipeline")
    doc = loaded("Tumour necrosis factor (TNF) and TNF.")

    assert loaded.pipe_names == ["biobert_abbreviations"]
    assert loaded.get_pipe("biobert_abbreviations").spans_key == "short_forms"
    assert "abbreviations" not in doc.spans
    assert pairs_of(doc, "short_forms") == [
        ("TNF", 24, "Tumour necrosis factor", 0),
        ("TNF", 33, "Tumour necrosis factor", 0),
    ]


def test_pipe_over_several_docs(nlp):
    texts = [
        "Colorectal cancer (CRC) and CRC.",
        "",
        "Angelman syndrome (AS). AS and AS.",
        "Plain text without any.",
    ]

    docs = list(nlp.pipe(texts, batch_size=2))

    assert [len(doc.spans["abbreviations"]) for doc in docs] == [2, 0, 3, 0]
    assert pairs_of(docs[2])[-1] == ("AS", 31, "Angelman syndrome", 0)


def test_invalid_spans_key():
    nlp = spacy.blank("en")

    with pytest.raises(ValueError, match="Invalid spans_key ''"):
        nlp.add_pipe("biobert_abbreviations", config={"spans_key": ""})
