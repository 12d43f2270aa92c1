"""Tag one abstract of a PubTator file and print each entity with its character offsets.

Usage: python scripts/tag_abstract.py PIPELINE PUBTATOR_FILE [--index N]

The text is the title, a space and the abstract, as in PubTator; entities that
match a gold mention exactly (offsets and all) are marked with a check.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Tuple

import spacy


def read_pubtator_document(path: Path, index: int) -> Tuple[str, str, List[Tuple[int, int]]]:
    """Return (PMID, text, gold mention offsets) of the index-th document of a PubTator file."""
    blocks = [b for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    if not 0 <= index < len(blocks):
        raise SystemExit(f"{path} has {len(blocks)} documents; --index {index} is out of range.")
    title = abstract = pmid = ""
    gold = []
    for line in blocks[index].splitlines():
        if "|t|" in line[:20]:
            pmid, _, title = line.split("|", 2)
        elif "|a|" in line[:20]:
            abstract = line.split("|", 2)[2]
        elif line.strip():
            fields = line.split("\t")
            gold.append((int(fields[1]), int(fields[2])))
    return pmid, f"{title} {abstract}", gold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path, help="a trained pipeline folder")
    parser.add_argument("pubtator", type=Path, help="a PubTator file")
    parser.add_argument("--index", type=int, default=0, help="which document (default: 0)")
    args = parser.parse_args()

    nlp = spacy.load(args.pipeline)
    pmid, text, gold = read_pubtator_document(args.pubtator, args.index)
    doc = nlp(text)
    gold_offsets = set(gold)
    print(f"PMID {pmid}: {len(text)} characters, {len(doc.ents)} entities "
          f"({len(gold)} gold mentions); hidden states: {doc.tensor.shape}")
    print(f"{'start':>6} {'end':>6}  {'label':<10} gold  text")
    for ent in doc.ents:
        mark = "yes" if (ent.start_char, ent.end_char) in gold_offsets else "no"
        print(f"{ent.start_char:>6} {ent.end_char:>6}  {ent.label_:<10} {mark:<5} {ent.text}")


if __name__ == "__main__":
    main()
