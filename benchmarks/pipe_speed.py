"""Tagging speed and peak memory of a trained pipeline on NCBI-disease test data.

Usage: python benchmarks/pipe_speed.py PIPELINE [--data ../shared/data] [--batch-size 32]

Tags the 940 test sentences of BioBERT's NCBI-disease split and the 100 test
abstracts (title + abstract) of the PubTator file through ``nlp.pipe`` and
prints words per second (spaCy tokens, whitespace excluded) and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import spacy

from spacy_biobert.readers.iob import read_iob
from spacy_biobert.readers.pubtator import read_pubtator


def time_pipe(nlp, texts, batch_size: int) -> tuple:
    start = time.perf_counter()
    n_words = 0
    n_entities = 0
    for doc in nlp.pipe(texts, batch_size=batch_size):
        n_words += sum(1 for token in doc if not token.is_space)
        n_entities += len(doc.ents)
    return n_words, n_entities, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    nlp = spacy.load(args.pipeline)
    sentences = [
        " ".join(sentence.words)
        for sentence in read_iob(args.data / "ncbi_disease/iob/test.tsv", entity_type="Disease")
    ]
    abstracts = [
        document.text
        for document in read_pubtator(args.data / "ncbi_disease/pubtator/NCBItestset_corpus.txt")
    ]
    time_pipe(nlp, sentences[:64], args.batch_size)  # warm-up

    print(f"{'input':<22} {'docs':>5} {'words':>7} {'entities':>8} {'seconds':>8} {'words/s':>8}")
    for name, texts in (("test sentences", sentences), ("test abstracts", abstracts)):
        n_words, n_entities, seconds = time_pipe(nlp, texts, args.batch_size)
        print(
            f"{name:<22} {len(texts):>5} {n_words:>7} {n_entities:>8} "
            f"{seconds:>8.1f} {n_words / seconds:>8.0f}"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
