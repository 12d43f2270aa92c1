"""The IOB reader on every BioBERT NER file beside the project, with the published counts."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_biobert.cli.convert import convert
from spacy_biobert.readers.iob import read_iob, read_iob_docs

pytestmark = pytest.mark.integration

# (folder, split file, entity type for untyped files, sentences, entities);
# the counts are those the corpora's SOURCE.md files give.
BIOBERT_FILES = [
    ("ncbi_disease/iob", "train.tsv", "Disease", 5424, 5134),
    ("ncbi_disease/iob", "devel.tsv", "Disease", 923, 787),
    ("ncbi_disease/iob", "test.tsv", "Disease", 940, 960),
    ("bc5cdr/iob_chem", "test.tsv", "Chemical", 4797, 5385),
    ("bc5cdr/iob_disease", "test.tsv", "Disease", 4797, 4424),
    ("bc2gm/iob", "test.tsv", "Gene", 5038, 6325),
    ("s800/iob", "test.tsv", "Species", 1630, 767),
]


@pytest.mark.parametrize("folder,name,entity_type,n_sentences,n_entities", BIOBERT_FILES)
def test_biobert_file_counts(shared_data, folder, name, entity_type, n_sentences, n_entities):
    path = shared_data / folder / name
    vocab = spacy.blank("en").vocab
    docs = list(read_iob_docs(path, vocab, entity_type))
    assert len(docs) == n_sentences
    assert sum(len(doc.ents) for doc in docs) == n_entities
    assert {ent.label_ for doc in docs for ent in doc.ents} == {entity_type}


def test_typed_bc5cdr_file(shared_data):
    path = shared_data / "bc5cdr" / "iob_both" / "test.tsv"
    vocab = spacy.blank("en").vocab
    labels = {}
    for doc in read_iob_docs(path, vocab):
        for ent in doc.ents:
            labels[ent.label_] = labels.get(ent.label_, 0) + 1
    assert labels == {"Chemical": 5385, "Disease": 4424}


def test_untyped_file_without_type_fails_on_first_entity(shared_data):
    path = shared_data / "ncbi_disease" / "iob" / "train.tsv"
    with pytest.raises(ValueError, match=r"train.tsv, line \d+: the tag 'B' has no entity type"):
        list(read_iob(path))


def test_convert_ncbi_test_split(shared_data, tmp_path):
    output = tmp_path / "test.spacy"
    n_docs = convert(
        shared_data / "ncbi_disease" / "iob" / "test.tsv", output, entity_type="Disease"
    )
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert n_docs == len(docs) == 940
    assert sum(len(doc.ents) for doc in docs) == 960
