"""Tag one abstract of a PubTator file and print each entity with its character offsets.

Usage: python scripts/tag_abstract.py PIPELINE PUBTATOR_FILE [--index N]

The text is the title, a space and the abstract, as in PubTator. The gold
column shows whether a gold mention has exactly the entity's offsets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import spacy

from spacy_biobert.readers.pubtator import read_pubtator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path, help="a trained pipeline folder")
    parser.add_argument("pubtator", type=Path, help="a PubTator file")
    parser.add_argument("--index", type=int, default=0, help="which document (default: 0)")
    args = parser.parse_args()

    nlp = spacy.load(args.pipeline)
    documents = list(read_pubtator(args.pubtator))
    if not 0 <= args.index < len(documents):
        raise SystemExit(
            f"{args.pubtator} has {len(documents)} documents; --index {args.index} is out of range."
        )
    document = documents[args.index]
    doc = nlp(document.text)
    gold_offsets = {(mention.start, mention.end) for mention in document.mentions}
    print(
        f"PMID {document.doc_id}: {len(document.text)} characters, {len(doc.ents)} entities "
        f"({len(gold_offsets)} gold mentions); hidden states: {doc.tensor.shape}"
    )
    print(f"{'start':>6} {'end':>6}  {'label':<10} gold  text")
    for ent in doc.ents:
        mark = "yes" if (ent.start_char, ent.end_char) in gold_offsets else "no"
        print(f"{ent.start_char:>6} {ent.end_char:>6}  {ent.label_:<10} {mark:<5} {ent.text}")


if __name__ == "__main__":
    main()
