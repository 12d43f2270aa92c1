"""``python -m spacy_biobert tag`` on PubMed XML and PubTator input with a tiny pipeline."""

from __future__ import annotations

import json

import pytest
import spacy
from spacy.training import Example

from spacy_biobert.cli.main import main as cli_main
from spacy_biobert.readers.pubtator import read_pubtator

PUBMED_XML = """<?xml version="1.0" encoding="utf-8"?>
<PubmedArticleSet>
  <PubmedArticle><MedlineCitation><PMID>111</PMID><Article>
    <ArticleTitle>Breast cancer in patients.</ArticleTitle>
    <Abstract><AbstractText>The gene was found in ovarian cancer.</AbstractText></Abstract>
  </Article></MedlineCitation></PubmedArticle>
  <PubmedArticle><MedlineCitation><PMID>222</PMID><Article>
    <ArticleTitle>Huntington disease.</ArticleTitle>
  </Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>
"""


@pytest.fixture(scope="module")
def pipeline(tiny_encoder, tmp_path_factory):
    nlp = spacy.blank(
        "en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}
    )
    nlp.add_pipe("biobert_ner", config={"model": {"encoder": str(tiny_encoder), "window": 32, "stride": 16}})
    example = Example.from_dict(
        nlp.make_doc("breast cancer in patients"), {"entities": [(0, 13, "Disease")]}
    )
    optimizer = nlp.initialize(lambda: [example])
    optimizer.learn_rate = 0.005
    for _ in range(40):
        nlp.update([example], sgd=optimizer)
    path = tmp_path_factory.mktemp("tag") / "pipeline"
    nlp.to_disk(path)
    return path


def test_tag_pubmed_xml_to_pubtator(pipeline, tmp_path, capsys):
    source = tmp_path / "citations.xml"
    source.write_text(PUBMED_XML, encoding="utf-8")
    output = tmp_path / "tagged.txt"
    assert cli_main(["tag", str(pipeline), str(source), str(output), "--no-progress"]) == 0
    assert "Tagged 2 documents" in capsys.readouterr().out
    documents = list(read_pubtator(output))
    assert [d.doc_id for d in documents] == ["111", "222"]
    assert documents[0].text == "Breast cancer in patients. The gene was found in ovarian cancer."
    assert documents[1].text.startswith("Huntington disease.")
    for document in documents:
        for mention in document.mentions:
            assert document.text[mention.start : mention.end] == mention.text
            assert mention.label == "Disease"


def test_tag_pubtator_to_bioc_json(pipeline, tmp_path):
    source = tmp_path / "gold.txt"
    source.write_text(
        "9|t|Breast cancer in patients.\n9|a|Nothing else.\n9\t0\t6\tBreast\tX\tD1\n\n",
        encoding="utf-8",
    )
    output = tmp_path / "tagged.json"
    assert cli_main(["tag", str(pipeline), str(source), str(output), "--no-progress"]) == 0
    collection = json.loads(output.read_text(encoding="utf-8"))
    (document,) = collection["documents"]
    assert document["id"] == "9"
    types = {
        annotation["infons"]["type"]
        for passage in document["passages"]
        for annotation in passage["annotations"]
    }
    # The gold mention of type X is replaced by predictions.
    assert "X" not in types


def test_tag_rejects_output_over_input(pipeline, tmp_path, capsys):
    source = tmp_path / "citations.xml"
    source.write_text(PUBMED_XML, encoding="utf-8")
    assert cli_main(["tag", str(pipeline), str(source), str(source), "--output-format", "pubtator"]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert source.read_text(encoding="utf-8") == PUBMED_XML
