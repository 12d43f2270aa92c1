"""The concept linker: name normalization, the name -> concept dictionary and the biobert_linker component."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_biobert.linking.dictionary import (
    CharNgramIndex,
    ConceptDictionary,
    DictionaryFormatError,
    KeyTable,
    char_ngrams,
    split_concept_id,
)
from spacy_biobert.linking.normalize import (
    americanize,
    casefold,
    check_steps,
    nfkc,
    normalize,
    singularize,
    singularize_word,
    unify_punctuation,
    word_order_key,
)

# Imported for the biobert_linker factory and the Span extensions, which entry
# points do not register yet.
from spacy_biobert.pipeline.linker import EntityLinker, score_links

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.linking_pipeline import (  # noqa: E402
    PipelineError,
    check_pipeline_folder,
    load_ner_pipeline,
    precision_recall_f1,
    score_end_to_end,
)

HAS_ABBREVIATIONS = importlib.util.find_spec("spacy_biobert.pipeline.abbreviations") is not None

# Two documents with a composite ID and its parts in the seventh column, an ID
# with spaces around it, a mention without an ID (-1), a "+" composite and a
# chemical.  The ambiguous name "DM" is seen twice with D003920 and once with D009223.
PUBTATOR = """\
1|t|Breast and ovarian cancers in DM.
1|a|Myotonic dystrophy (DM) and diabetes mellitus were studied with lithium.
1\t0\t25\tBreast and ovarian cancers\tDisease\tD001943|D010051\tBreast cancers|ovarian cancers
1\t30\t32\tDM\tDisease\t D003920 
1\t34\t52\tMyotonic dystrophy\tDisease\tD009223
1\t54\t56\tDM\tDisease\tD009223
1\t62\t79\tdiabetes mellitus\tDisease\tD003920
1\t97\t104\tlithium\tChemical\tD008094

2|t|DM again.
2|a|Unknown drug and inherited neuromuscular disease.
2\t0\t2\tDM\tDisease\tD003920
2\t10\t22\tUnknown drug\tChemical\t-1
2\t27\t59\tinherited neuromuscular disease\tDisease\tD009468+D030342

"""


@pytest.fixture
def pubtator_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    return path


@pytest.fixture
def tsv_file(tmp_path):
    path = tmp_path / "diseases.tsv"
    path.write_text(
        "# concept ID, preferred name, synonyms\n"
        "D003924\tDiabetes Mellitus, Type 2\tNIDDM|type 2 diabetes| adult-onset diabetes \n"
        "\n"
        "D006816\tHuntington Disease\n"
        "OMIM:222100\tDiabetes mellitus, insulin-dependent, 1\t\n",
        encoding="utf-8",
    )
    return path


def make_linker(nlp, **settings) -> EntityLinker:
    linker = nlp.add_pipe("biobert_linker", config=settings)
    linker.add_name("breast cancer", "D001943", "Disease", count=3)
    linker.add_name("Breast Neoplasms", "D001943", "Disease", count=0)
    linker.add_name("hereditary breast and ovarian cancer syndrome", "D061325", "Disease")
    linker.add_name("DM", "D003920", "Disease", count=2)
    linker.add_name("DM", "D009223", "Disease", count=1)
    linker.add_name("Myotonic dystrophy", "D009223", "Disease")
    linker.add_name("Huntington disease", "D006816", "Disease")
    linker.add_name("lithium", "D008094", "Chemical")
    return linker


def entities_of(doc):
    return [
        (ent.text, ent.label_, ent.kb_id_, ent._.link_method, ent._.link_score) for ent in doc.ents
    ]


def set_entities(doc, *items):
    """Set ``doc.ents`` from ``(text, label)`` pairs, each at the first occurrence of the text."""
    spans = []
    for text, label in items:
        start = doc.text.index(text)
        spans.append(doc.char_span(start, start + len(text), label=label))
    doc.ents = spans
    return doc


# Normalization


def test_nfkc_plain_forms():
    assert nfkc("\ufb01brosis\u00b2") == "fibrosis2"
    assert nfkc("\uff21\uff22\uff23") == "ABC"


def test_casefold_lowers_and_folds():
    assert casefold("Huntington DISEASE") == "huntington disease"
    assert casefold("Stra\u00dfe") == "strasse"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Crohn's disease", "Crohn disease"),
        ("Crohn\u2019s disease", "Crohn disease"),
        ("IL-2 deficiency", "IL 2 deficiency"),
        ("IL2 deficiency", "IL 2 deficiency"),
        ("Ca(2+)", "Ca 2"),
        ("non\u2013insulin-dependent  diabetes", "non insulin dependent diabetes"),
        ("  cancer / tumour ", "cancer tumour"),
    ],
)
def test_unify_punctuation(text, expected):
    assert unify_punctuation(text) == expected


def test_americanize_spellings():
    assert americanize("anaemia") == "anemia"
    assert americanize("tumours of the oesophagus") == "tumors of the esophagus"
    assert americanize("diarrhoea") == "diarrhea"
    # "oe" at a word end and "our" after one letter are left alone.
    assert americanize("toe hour") == "toe hour"


@pytest.mark.parametrize(
    "word, expected",
    [
        ("cancers", "cancer"),
        ("deficiencies", "deficiency"),
        ("abscesses", "abscess"),
        ("stenosis", "stenosis"),
        ("tetanus", "tetanus"),
        ("gas", "gas"),
        ("CHS", "CHS"),
        ("2ds", "2ds"),
    ],
)
def test_singularize_word(word, expected):
    assert singularize_word(word) == expected


def test_singularize_each_word():
    assert singularize("breast cancers and tumors") == "breast cancer and tumor"


def test_normalize_applies_steps_in_fixed_order():
    text = "Tumours of the \ufb01BROUS Tissues"
    assert normalize(text) == "tumor of the fibrous tissue"
    # The listed order does not matter; only the set of steps does.
    assert normalize(text, ["plural", "casefold"]) == normalize(text, ["casefold", "plural"])
    assert normalize("  Breast  cancers ", []) == "Breast cancers"


def test_check_steps_rejects_unknown_step():
    assert check_steps(["plural", "nfkc"]) == ("nfkc", "plural")
    with pytest.raises(ValueError, match="'stemming'.*nfkc, casefold"):
        check_steps(["stemming"])


def test_word_order_key():
    assert word_order_key("cancer of the breast") == "breast cancer"
    assert word_order_key("breast cancer") == "breast cancer"
    assert word_order_key("cancer of the") == ""
    assert word_order_key("ataxia") == ""


# Dictionary: TSV


def test_tsv_adds_names_without_counts(tsv_file):
    dictionary = ConceptDictionary()

    assert dictionary.add_tsv(tsv_file) == 3
    assert len(dictionary) == 6
    assert dictionary.n_concepts == 3
    assert [c.concept_id for c in dictionary.candidates("adult-onset diabetes")] == ["D003924"]
    assert dictionary.candidates("NIDDM")[0].count == 0
    assert dictionary.preferred_name("D003924") == "Diabetes Mellitus, Type 2"
    assert dictionary.preferred_name("OMIM:222100") == "Diabetes mellitus, insulin-dependent, 1"
    assert dictionary.preferred_name("D000001") is None


@pytest.mark.parametrize(
    "line, message",
    [
        ("D003924 Diabetes", r"line 2: expected 2 or 3 tab-separated fields .* found 1.*tabs, not spaces"),
        ("D003924\tDiabetes\tT2D\tNIDDM", r"line 2: expected 2 or 3 .* found 4.*third field"),
        ("\tDiabetes", r"line 2, field 1 \(concept ID\).*empty or the missing-ID marker"),
        ("-1\tDiabetes", r"line 2, field 1 \(concept ID\)"),
        ("D003924\t  ", r"line 2, field 2 \(preferred name\).*'D003924'"),
    ],
)
def test_tsv_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.tsv"
    path.write_text(f"D006816\tHuntington Disease\n{line}\n", encoding="utf-8")

    with pytest.raises(DictionaryFormatError, match=message) as error:
        ConceptDictionary().add_tsv(path)
    assert str(path) in str(error.value)


def test_tsv_invalid_utf8(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("D1\tMénière disease\n".encode("latin-1"))

    with pytest.raises(DictionaryFormatError, match=r"line 1: invalid UTF-8.*Save the file as UTF-8"):
        ConceptDictionary().add_tsv(path)


def test_tsv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        ConceptDictionary().add_tsv(tmp_path / "missing.tsv")


def test_tsv_invalid_line_adds_nothing(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("D006816\tHuntington Disease\nD003924 only one field\n", encoding="utf-8")
    dictionary = ConceptDictionary()

    with pytest.raises(DictionaryFormatError):
        dictionary.add_tsv(path)
    assert len(dictionary) == 0

    path.write_text("D006816\tHuntington Disease\n", encoding="utf-8")
    assert dictionary.add_tsv(path) == 1
    assert len(dictionary) == 1


def test_tsv_folder_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="is a folder; give the path of a TSV file"):
        ConceptDictionary().add_tsv(tmp_path)


# Dictionary: PubTator


def test_pubtator_names_and_ids(pubtator_file):
    dictionary = ConceptDictionary()

    added = dictionary.add_pubtator(pubtator_file, entity_types=["Disease"])

    # 7 disease mentions plus the 2 parts of the "|" composite; the chemical
    # and the mention without an ID add nothing.
    assert added == 9
    assert [c.concept_id for c in dictionary.candidates("Breast and ovarian cancers")] == [
        "D001943|D010051"
    ]
    assert [c.concept_id for c in dictionary.candidates("Breast cancers")] == ["D001943"]
    assert [c.concept_id for c in dictionary.candidates("ovarian cancers")] == ["D010051"]
    assert [c.concept_id for c in dictionary.candidates("inherited neuromuscular disease")] == [
        "D009468+D030342"
    ]
    assert "lithium" not in dictionary
    assert "Unknown drug" not in dictionary


def test_pubtator_ambiguous_name_ranked_by_count(pubtator_file):
    dictionary = ConceptDictionary()
    dictionary.add_pubtator(pubtator_file)

    candidates = dictionary.candidates("DM")

    # " D003920 " is stripped, so it counts with the other D003920 mentions.
    assert [(c.concept_id, c.count) for c in candidates] == [("D003920", 2), ("D009223", 1)]
    assert candidates[0].share == pytest.approx(2 / 3)
    assert "lithium" in dictionary


def test_split_concept_id():
    assert split_concept_id("D001943|D010051") == ("D001943", "D010051")
    assert split_concept_id("D008545+D012345") == ("D008545", "D012345")
    assert split_concept_id(" OMIM:222100 ") == ("OMIM:222100",)
    assert split_concept_id("") == ()


# Dictionary: ranking, storage, files


def test_rank_ties_by_concept_count_then_order():
    dictionary = ConceptDictionary()
    dictionary.add("cold", "D003139", count=0)
    dictionary.add("cold", "D003080", count=0)
    assert [c.concept_id for c in dictionary.candidates("cold")] == ["D003139", "D003080"]
    assert [c.share for c in dictionary.candidates("cold")] == [0.5, 0.5]

    # D003080 is now the more frequent concept overall, which breaks the tie.
    dictionary.add("common cold", "D003080", count=4)
    assert [c.concept_id for c in dictionary.candidates("cold")] == ["D003080", "D003139"]


def test_add_rejects_empty_and_missing():
    dictionary = ConceptDictionary()
    assert dictionary.add("  ", "D1") is False
    assert dictionary.add("name", "-1") is False
    assert dictionary.add("name", " ") is False
    assert len(dictionary) == 0
    with pytest.raises(ValueError, match="count -2"):
        dictionary.add("name", "D1", count=-2)


def test_dictionary_file_round_trip(tmp_path, pubtator_file, tsv_file):
    dictionary = ConceptDictionary()
    dictionary.add_pubtator(pubtator_file)
    dictionary.add_tsv(tsv_file)

    dictionary.to_disk(tmp_path / "dictionary.json")
    from_file = ConceptDictionary.from_disk(tmp_path / "dictionary.json")
    from_bytes = ConceptDictionary.from_bytes(dictionary.to_bytes())

    for loaded in (from_file, from_bytes):
        assert loaded.to_dict() == dictionary.to_dict()
        assert loaded.candidates("DM") == dictionary.candidates("DM")
        assert loaded.preferred_name("D003924") == "Diabetes Mellitus, Type 2"


def test_dictionary_file_errors(tmp_path):
    path = tmp_path / "dictionary.json"
    path.write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(DictionaryFormatError, match="not a saved concept dictionary"):
        ConceptDictionary.from_disk(path)

    path.write_text(
        '{"format": "spacy_biobert.ConceptDictionary", "version": 1, '
        '"concepts": ["D1"], "names": {"flu": [3, 1]}}',
        encoding="utf-8",
    )
    with pytest.raises(DictionaryFormatError, match=r"'flu' has invalid concepts \[3, 1\]"):
        ConceptDictionary.from_disk(path)

    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DictionaryFormatError, match="invalid JSON"):
        ConceptDictionary.from_disk(path)


def test_memory_estimate_grows_with_names():
    dictionary = ConceptDictionary()
    empty = dictionary.memory_bytes()
    for number in range(1000):
        dictionary.add(f"disease number {number}", f"D{number:06d}")
    assert dictionary.memory_bytes() > empty + 1000 * 100


def test_key_table_merges_names_and_tracks_changes():
    dictionary = ConceptDictionary()
    dictionary.add("Breast Cancer", "D001943", count=2)
    dictionary.add("breast cancers", "D001943", count=1)
    dictionary.add("breast-cancer", "D061325", count=1)
    table = KeyTable(dictionary, normalize)

    assert [(c.concept_id, c.count) for c in table.candidates("breast cancer")] == [
        ("D001943", 3),
        ("D061325", 1),
    ]
    assert table.is_current()
    dictionary.add("tumor", "D009369")
    assert not table.is_current()


def test_char_ngrams_padded():
    assert char_ngrams("flu") == [" fl", "flu", "lu "]
    assert char_ngrams("") == ["  "]


def test_char_ngram_index_nearest():
    index = CharNgramIndex(["huntington disease", "breast cancer", "ovarian cancer"])

    key, cosine = index.nearest("huntingtons disease")
    assert key == "huntington disease"
    assert 0.7 < cosine < 1.0
    assert index.nearest("breast cancer") == ("breast cancer", pytest.approx(1.0, abs=1e-6))
    assert index.nearest("xyz") is None
    assert index.memory_bytes() > 0


# The component


def test_component_link_methods():
    nlp = spacy.blank("en")
    make_linker(nlp)
    doc = nlp.make_doc(
        "Breast cancer, breast-cancers, cancer of the breast, Huntington desease, "
        "hereditary breast and ovarian cancer, DM, lithium, xyz, BRCA1."
    )
    set_entities(
        doc,
        ("Breast cancer", "Disease"),
        ("breast-cancers", "Disease"),
        ("cancer of the breast", "Disease"),
        ("Huntington desease", "SpecificDisease"),
        ("hereditary breast and ovarian cancer", "Disease"),
        ("DM", "Disease"),
        ("lithium", "Chemical"),
        ("xyz", "Disease"),
        ("BRCA1", "Gene"),
    )

    linked = {text: rest for text, *rest in entities_of(nlp.get_pipe("biobert_linker")(doc))}

    assert linked["Breast cancer"] == ["Disease", "D001943", "normalized", 1.0]
    assert linked["breast-cancers"] == ["Disease", "D001943", "normalized", 1.0]
    assert linked["cancer of the breast"] == ["Disease", "D001943", "word_order", 1.0]
    assert linked["DM"] == ["Disease", "D003920", "exact", pytest.approx(2 / 3)]
    assert linked["lithium"] == ["Chemical", "D008094", "exact", 1.0]
    assert linked["xyz"] == ["Disease", "", None, None]
    # A label that is not linked keeps its entity as it was.
    assert linked["BRCA1"] == ["Gene", "", None, None]

    label, concept_id, method, score = linked["Huntington desease"]
    assert (label, concept_id, method) == ("SpecificDisease", "D006816", "fallback")
    assert 0.6 <= score < 1.0
    label, concept_id, method, score = linked["hereditary breast and ovarian cancer"]
    assert (concept_id, method) == ("D061325", "fallback")
    assert score == pytest.approx(0.83, abs=0.05)


def test_component_exact_before_normalized():
    nlp = spacy.blank("en")
    linker = make_linker(nlp)
    linker.add_name("Breast cancer", "D999999", "Disease", count=1)

    doc = set_entities(nlp.make_doc("Breast cancer and breast cancer."), ("Breast cancer", "Disease"))
    doc = linker(doc)

    assert entities_of(doc) == [("Breast cancer", "Disease", "D999999", "exact", 1.0)]


def test_component_steps_switched_off():
    nlp = spacy.blank("en")
    make_linker(nlp, normalization=[], word_order=False, fallback="none")
    doc = nlp.make_doc("breast cancers, cancer of the breast, Huntingtons disease")
    set_entities(
        doc,
        ("breast cancers", "Disease"),
        ("cancer of the breast", "Disease"),
        ("Huntingtons disease", "Disease"),
    )

    doc = nlp.get_pipe("biobert_linker")(doc)

    assert [(ent.kb_id_, ent._.link_method) for ent in doc.ents] == [("", None)] * 3


def test_component_fallback_min_score():
    nlp = spacy.blank("en")
    make_linker(nlp, fallback_min_score=0.99)
    doc = set_entities(nlp.make_doc("Huntington desease"), ("Huntington desease", "Disease"))

    doc = nlp.get_pipe("biobert_linker")(doc)

    assert entities_of(doc) == [("Huntington desease", "Disease", "", None, None)]


def test_component_keeps_ids_without_overwrite():
    nlp = spacy.blank("en")
    make_linker(nlp, overwrite=False)
    doc = nlp.make_doc("DM and lithium")
    doc.ents = [
        Span(doc, 0, 1, label="Disease", kb_id="D009223"),
        Span(doc, 2, 3, label="Chemical"),
    ]

    doc = nlp.get_pipe("biobert_linker")(doc)

    assert [(ent.kb_id_, ent._.link_method) for ent in doc.ents] == [
        ("D009223", None),
        ("D008094", "exact"),
    ]


def test_component_labels_setting_replaces_default():
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("biobert_linker", config={"labels": {"Chemical": "Chemical"}})

    assert linker.labels_to_dictionaries == {"Chemical": "Chemical"}
    assert list(linker.dictionaries) == ["Chemical"]


def test_component_per_label_dictionaries():
    nlp = spacy.blank("en")
    linker = make_linker(nlp)
    doc = set_entities(nlp.make_doc("lithium"), ("lithium", "Disease"))

    # "lithium" is only in the Chemical dictionary.
    assert linker(doc).ents[0].kb_id_ == ""
    assert sorted(linker.dictionaries) == ["Chemical", "Disease"]
    with pytest.raises(KeyError, match="no dictionary 'Gene'.*Chemical, Disease"):
        linker.add_name("BRCA1", "672", "Gene")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"fallback": "embeddings"}, "Invalid fallback 'embeddings'.*none, char_ngram"),
        ({"fallback_min_score": 1.5}, "Invalid fallback_min_score 1.5"),
        ({"labels": {"Gene": ""}}, "Invalid labels"),
        ({"normalization": ["stemming"]}, "Unknown normalization step"),
    ],
)
def test_component_invalid_settings(settings, message):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=message):
        nlp.add_pipe("biobert_linker", config=settings)


def test_component_rejects_empty_labels():
    with pytest.raises(ValueError, match="Invalid labels {}"):
        EntityLinker(spacy.blank("en").vocab, labels={})


def test_component_empty_doc():
    nlp = spacy.blank("en")
    make_linker(nlp)
    doc = nlp("")
    assert list(doc.ents) == []


@pytest.mark.skipif(not HAS_ABBREVIATIONS, reason="the abbreviation component is not installed")
def test_component_abbreviation_long_form():
    import spacy_biobert.pipeline.abbreviations  # noqa: F401  (registers the factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_abbreviations")
    linker = make_linker(nlp)
    linker.add_name("Duchenne muscular dystrophy", "D020388", "Disease")
    doc = nlp.make_doc("Boys with Duchenne muscular dystrophy (DMD) were seen. DMD is rare.")
    for _, component in nlp.pipeline[:-1]:
        doc = component(doc)
    later = doc.text.rindex("DMD")
    doc.ents = [doc.char_span(later, later + 3, label="Disease")]

    doc = linker(doc)

    assert entities_of(doc) == [("DMD", "Disease", "D020388", "abbreviation", 1.0)]


def test_component_long_form_argument():
    nlp = spacy.blank("en")
    linker = make_linker(nlp)
    link = linker.link("MD", "Disease", long_form="myotonic dystrophies")
    assert (link.concept_id, link.method, link.score) == ("D009223", "abbreviation", 1.0)
    assert linker.link("MD", "Gene", long_form="myotonic dystrophy") is None


def test_component_add_pubtator_routes_types(pubtator_file):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("biobert_linker")

    linker.add_pubtator(pubtator_file)

    assert "lithium" in linker.dictionaries["Chemical"]
    assert "lithium" not in linker.dictionaries["Disease"]
    assert "DM" in linker.dictionaries["Disease"]


def test_initialize_from_config(pubtator_file, tsv_file):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_linker", name="linker")
    nlp.config["initialize"]["components"]["linker"] = {
        "pubtator_paths": [str(pubtator_file)],
        "tsv_paths": {"Disease": str(tsv_file)},
    }

    nlp.initialize()

    linker = nlp.get_pipe("linker")
    assert linker.dictionaries["Disease"].candidates("NIDDM")[0].concept_id == "D003924"
    assert linker.dictionaries["Chemical"].candidates("lithium")[0].concept_id == "D008094"


def test_initialize_from_examples():
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("biobert_linker")
    reference = nlp.make_doc("Gout and lithium and flu")
    reference.ents = [
        Span(reference, 0, 1, label="Disease", kb_id="D006073"),
        Span(reference, 2, 3, label="Chemical", kb_id="D008094"),
        Span(reference, 4, 5, label="Disease", kb_id="-1"),
    ]
    examples = [Example(nlp.make_doc(reference.text), reference)]

    nlp.initialize(lambda: examples)

    assert linker.dictionaries["Disease"].candidates("Gout")[0].concept_id == "D006073"
    assert "flu" not in linker.dictionaries["Disease"]
    assert "lithium" in linker.dictionaries["Chemical"]


def test_score_links():
    nlp = spacy.blank("en")
    reference = nlp.make_doc("Gout and lithium and flu")
    reference.ents = [
        Span(reference, 0, 1, label="Disease", kb_id="D006073"),
        Span(reference, 2, 3, label="Chemical", kb_id="D008094"),
        Span(reference, 4, 5, label="Disease", kb_id="D007251"),
    ]
    predicted = nlp.make_doc(reference.text)
    predicted.ents = [
        Span(predicted, 0, 1, label="Disease", kb_id="D006073"),
        Span(predicted, 2, 3, label="Chemical", kb_id="D000001"),
    ]

    scores = score_links([Example(predicted, reference)])

    assert scores["link_accuracy"] == pytest.approx(0.5)
    assert scores["link_coverage"] == pytest.approx(2 / 3)


# Serialization


def test_component_bytes_round_trip():
    nlp = spacy.blank("en")
    linker = make_linker(nlp)
    data = linker.to_bytes()

    other = spacy.blank("en").add_pipe("biobert_linker").from_bytes(data)

    for name in ("Disease", "Chemical"):
        assert other.dictionaries[name].to_dict() == linker.dictionaries[name].to_dict()
    assert other.link("cancer of the breast", "Disease").concept_id == "D001943"


def test_pipeline_to_disk_and_spacy_load(tmp_path):
    nlp = spacy.blank("en")
    make_linker(nlp, fallback_min_score=0.5, normalization=["casefold", "plural"])
    nlp.to_disk(tmp_path / "pipeline")

    assert (tmp_path / "pipeline" / "biobert_linker" / "dictionaries.json").is_file()
    loaded = spacy.load(tmp_path / "pipeline")
    linker = loaded.get_pipe("biobert_linker")
    assert linker.fallback_min_score == 0.5
    assert linker.normalization == ("casefold", "plural")

    doc = set_entities(loaded.make_doc("Breast Cancers and DM"), ("Breast Cancers", "Disease"), ("DM", "Disease"))
    doc = linker(doc)
    assert entities_of(doc) == [
        ("Breast Cancers", "Disease", "D001943", "normalized", 1.0),
        ("DM", "Disease", "D003920", "exact", pytest.approx(2 / 3)),
    ]


def test_from_disk_wrong_folder(tmp_path):
    linker = spacy.blank("en").add_pipe("biobert_linker")
    with pytest.raises(FileNotFoundError, match="dictionaries.json.*spacy.load"):
        linker.from_disk(tmp_path)


def test_doc_round_trip_keeps_extensions():
    nlp = spacy.blank("en")
    make_linker(nlp)
    doc = set_entities(nlp.make_doc("DM is common"), ("DM", "Disease"))
    doc = nlp.get_pipe("biobert_linker")(doc)

    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())

    assert entities_of(restored) == [("DM", "Disease", "D003920", "exact", pytest.approx(2 / 3))]


# End-to-end scoring of the linking benchmark


def test_end_to_end_scores_pairs_and_spans():
    gold = [
        (0, 0, 13, "D001943"),
        (0, 20, 45, "D001943|D010051"),
        (0, 50, 60, "D003920"),
        (0, 70, 75, "-1"),
        (1, 0, 13, "D001943"),
        (1, 20, 30, ""),
        (1, 40, 50, "MESH:D006816"),
    ]
    predicted = [
        (0, 0, 13, "D001943"),  # exact pair
        (0, 20, 45, "D010051|D001943"),  # composite ID, parts in another order
        (0, 50, 60, "D009223"),  # wrong ID: a false positive and a false negative
        (0, 70, 75, "D000001"),  # gold span without an ID: ignored
        (0, 80, 90, "D000002"),  # no gold span
        (1, 0, 12, "D001943"),  # one character short of the gold span
        (1, 40, 50, ""),  # found span left without an ID
    ]

    scores = score_end_to_end(gold, predicted)

    assert scores.pair_true_positives == 2
    assert scores.pair_false_positives == 3
    assert scores.pair_false_negatives == 3
    assert scores.span_true_positives == 4
    assert scores.span_false_positives == 2
    assert scores.span_false_negatives == 1
    assert scores.found_linked_correctly == 2
    assert scores.ignored == 1
    assert scores.unlinked == 1
    assert scores.pairs == pytest.approx((0.4, 0.4, 0.4))
    assert scores.spans == pytest.approx(precision_recall_f1(4, 2, 1))
    assert scores.link_accuracy_on_found == pytest.approx(0.5)


def test_end_to_end_composite_part_is_wrong():
    gold = [(0, 0, 25, "D001943|D010051")]

    scores = score_end_to_end(gold, [(0, 0, 25, "D001943")])

    assert scores.pair_true_positives == 0
    assert scores.pair_false_positives == 1
    assert scores.pair_false_negatives == 1
    assert scores.span_true_positives == 1
    assert scores.link_accuracy_on_found == 0.0


def test_end_to_end_mesh_prefix_and_plus_separator():
    gold = [(0, 0, 10, "MESH:D009468+D030342")]

    scores = score_end_to_end(gold, [(0, 0, 10, "D030342|D009468")])

    assert scores.pairs == pytest.approx((1.0, 1.0, 1.0))


def test_end_to_end_duplicate_span_keeps_id():
    # One annotation of the span has an ID, so a prediction there is scored.
    gold = [(0, 0, 5, "-1"), (0, 0, 5, "D006073")]

    scores = score_end_to_end(gold, [(0, 0, 5, "D006073")])

    assert scores.ignored == 0
    assert scores.pair_true_positives == 1
    assert scores.pair_false_negatives == 0


def test_end_to_end_without_gold_or_predictions():
    empty = score_end_to_end([], [])
    only_missing_ids = score_end_to_end([(0, 0, 5, "-1")], [(0, 0, 5, "D006073")])

    assert empty.pairs == (0.0, 0.0, 0.0)
    assert empty.link_accuracy_on_found == 0.0
    assert only_missing_ids.ignored == 1
    assert only_missing_ids.pair_false_positives == 0
    assert only_missing_ids.span_false_positives == 0


def test_precision_recall_f1_zero_denominators():
    assert precision_recall_f1(0, 0, 0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(3, 1, 0) == pytest.approx((0.75, 1.0, 6 / 7))


def test_benchmark_pipeline_folder_errors(tmp_path):
    with pytest.raises(PipelineError, match="Pipeline folder not found: .*missing.*make demo"):
        check_pipeline_folder(tmp_path / "missing")
    with pytest.raises(PipelineError, match="contains no config.cfg"):
        check_pipeline_folder(tmp_path)


def test_benchmark_rejects_pipeline_with_linker(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_linker")
    nlp.to_disk(tmp_path / "pipeline")

    with pytest.raises(PipelineError, match=r"already contains biobert_linker \(biobert_linker\)"):
        load_ner_pipeline(tmp_path / "pipeline")


# The real corpus


@pytest.mark.integration
def test_ncbi_disease_accuracy(shared_data, caplog):
    from spacy_biobert.readers.pubtator import read_pubtator

    pubtator = shared_data / "ncbi_disease" / "pubtator"
    # The training files have known defects, which the readers log as warnings.
    caplog.set_level(logging.ERROR, logger="spacy_biobert.readers")
    linker = spacy.blank("en").add_pipe("biobert_linker")
    linker.add_pubtator([pubtator / "NCBItrainset_corpus.txt", pubtator / "NCBIdevelopset_corpus.txt"])

    n_correct = n_mentions = 0
    for document in read_pubtator(pubtator / "NCBItestset_corpus.txt"):
        for mention in document.mentions:
            link = linker.link(mention.text, mention.label)
            gold = set(split_concept_id(mention.concept_id))
            n_mentions += 1
            n_correct += link is not None and set(split_concept_id(link.concept_id)) == gold

    assert n_mentions == 960
    # Measured 0.7156 without abbreviations (benchmarks/linking.py, "+ word order"
    # row plus the fallback); the test allows for small changes in the steps.
    assert n_correct / n_mentions >= 0.70
