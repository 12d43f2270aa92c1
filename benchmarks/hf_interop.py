"""Check a trained pipeline's round trip through a Hugging Face folder on real sentences.

Exports the pipeline's ``biobert_ner`` with ``export_pipeline`` and imports
that folder again with ``import_checkpoint``.  Over the NCBI-disease test
sentences it prints the largest logit difference between ``transformers``
(first word piece of each token) and each of the two pipelines.  It also compares the imported pipeline's entities
(``context="document"``, ``decoding="argmax"``) with those of
``pipeline("token-classification", aggregation_strategy="first")`` on the raw
test abstracts that fit in one window.

    python benchmarks/hf_interop.py training/ncbi_minilm/model-best --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy
import spacy
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from spacy_biobert.huggingface import export_pipeline, import_checkpoint
from spacy_biobert.readers.iob import read_iob
from spacy_biobert.readers.pubtator import read_pubtator


def first_piece_logits(model, tokenizer, words):
    encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt", truncation=True)
    with torch.no_grad():
        logits = model(**encoded).logits[0].numpy()
    rows, seen = {}, set()
    for position, word in enumerate(encoded.word_ids()):
        if word is not None and word not in seen:
            seen.add(word)
            rows[word] = logits[position]
    return rows


def max_difference(nlp, model, tokenizer, sentences) -> float:
    ner = nlp.get_pipe("ner")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    order = [labels.index(tag) for tag in ner.tags]
    worst = 0.0
    for words in sentences:
        doc = spacy.tokens.Doc(nlp.vocab, words=words)
        ours = ner.predict([doc]).logits[0]
        theirs = first_piece_logits(model, tokenizer, words)
        for i, row in theirs.items():
            worst = max(worst, float(numpy.abs(ours[i] - row[order]).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SPACY_BIOBERT_DATA", "../shared/data")))
    args = parser.parse_args()
    nlp = spacy.load(args.pipeline)
    # transformers reads each sentence whole, so compare with one window per
    # sentence and no sentence splitting inside it.
    window = {"context": "document", "window": 512, "stride": 384}
    nlp.get_pipe("ner").model.attrs.update(window)
    sentences = [
        sentence.words
        for sentence in read_iob(args.data / "ncbi_disease" / "iob" / "test.tsv", entity_type="Disease")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_pipeline(nlp, Path(tmp) / "hf")
        model = AutoModelForTokenClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        print(f"export: max |logit difference| {max_difference(nlp, model, tokenizer, sentences):.2e} "
              f"over {len(sentences)} sentences")
        imported = import_checkpoint(folder, model_config=window)
        print(f"import: max |logit difference| {max_difference(imported, model, tokenizer, sentences):.2e}")
        imported.get_pipe("ner").decoding = "argmax"
        tagger = pipeline("token-classification", model=str(folder), aggregation_strategy="first", device=-1)
        texts = [
            document.text
            for document in read_pubtator(args.data / "ncbi_disease" / "pubtator" / "NCBItestset_corpus.txt")
        ]
        texts = [text for text in texts if len(tokenizer(text, verbose=False)["input_ids"]) <= 512]
        same = 0
        started = time.perf_counter()
        for text, doc in zip(texts, imported.pipe(texts)):
            ours = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
            theirs = {(e["start"], e["end"], e["entity_group"]) for e in tagger(text)}
            same += ours == theirs
            for start, end, label in sorted(ours ^ theirs):
                side = "ours only" if (start, end, label) in ours else "transformers only"
                print(f"  {side}: {text[start:end]!r} ({start}-{end}, {label}) in {text[max(start - 30, 0):end + 30]!r}")
        print(f"entities equal to the transformers pipeline on {same} of {len(texts)} raw abstracts "
              f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
