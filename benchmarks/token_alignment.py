"""Measure how well the tokenizer's boundaries fit the gold mentions and BioBERT's tokens.

Usage: python benchmarks/token_alignment.py [--data ../shared/data]

Tokenizes each document (title + " " + abstract) of every split of the
NCBI-disease and BC5CDR PubTator files twice: with spaCy's default English
tokenizer (``spacy.blank("en")``) and with ``spacy_biobert.BioTokenizer.v1``.
For each, counts the gold mentions whose start and end fall on token
boundaries, that is ``doc.char_span(start, end)`` is not None.  All mention
lines count, including both copies of a PMID that a file contains twice.  A
mention that does not align cannot be predicted exactly by a token tagger.
Every mention that does not align with BioTokenizer is listed with the token
that its boundary cuts.

Two checks against BioBERT's IOB files follow:

- the share of IOB tokens that BioTokenizer reproduces (same character
  offsets) when it tokenizes each IOB sentence joined by single spaces;
- the tokens BioTokenizer makes from the PubTator text, compared as a multiset
  with the IOB file's tokens, because the IOB sentences are not in the
  PubTator file's order.  A PMID that occurs twice in a PubTator file is
  tokenized once.

The PubTator files are read with ``spacy_biobert.readers.pubtator``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from spacy_biobert.readers.iob import read_iob
from spacy_biobert.readers.pubtator import read_pubtator

# (corpus, split, PubTator file, IOB file), relative to --data.
SPLITS = [
    ("ncbi_disease", "train", "ncbi_disease/pubtator/NCBItrainset_corpus.txt", "ncbi_disease/iob/train.tsv"),
    ("ncbi_disease", "devel", "ncbi_disease/pubtator/NCBIdevelopset_corpus.txt", "ncbi_disease/iob/devel.tsv"),
    ("ncbi_disease", "test", "ncbi_disease/pubtator/NCBItestset_corpus.txt", "ncbi_disease/iob/test.tsv"),
    ("bc5cdr", "train", "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt", "bc5cdr/iob_both/train.tsv"),
    ("bc5cdr", "devel", "bc5cdr/pubtator/CDR_DevelopmentSet.PubTator.txt", "bc5cdr/iob_both/devel.tsv"),
    ("bc5cdr", "test", "bc5cdr/pubtator/CDR_TestSet.PubTator.txt", "bc5cdr/iob_both/test.tsv"),
]


@dataclass
class PubtatorDocument:
    pmid: str
    text: str  # title + " " + abstract
    mentions: List[Tuple[int, int]]  # character offsets, end exclusive


def read_documents(path: Path) -> Iterator[PubtatorDocument]:
    """Yield the documents of a PubTator file with their mention offsets."""
    for document in read_pubtator(path):
        offsets = [(mention.start, mention.end) for mention in document.mentions]
        yield PubtatorDocument(document.doc_id, document.text, offsets)


@dataclass
class BoundaryCut:
    kind: str  # such as "letter-digit transition", counted in the summary
    description: str


def describe_boundary(doc: Doc, position: int, is_end: bool) -> Optional[BoundaryCut]:
    """Describe why a mention's start or end is not a token boundary.

    Returns None when ``position`` is a token boundary.
    """
    name = "the end" if is_end else "the start"
    for token in doc:
        token_end = token.idx + len(token.text)
        if position == (token_end if is_end else token.idx):
            return None
    for token in doc:
        token_end = token.idx + len(token.text)
        if token.idx < position < token_end:
            left = token.text[: position - token.idx]
            right = token.text[position - token.idx :]
            kind = kind_of_cut(left[-1], right[0])
            return BoundaryCut(kind, f"{name} cuts {token.text!r} into {left!r} + {right!r} ({kind})")
        if token_end <= position <= token_end + len(token.whitespace_):
            return BoundaryCut("whitespace", f"{name} falls on the space after {token.text!r}")
    return BoundaryCut(
        "outside the text", f"{name} ({position}) is outside the text of {len(doc.text)} characters"
    )


def kind_of_cut(before: str, after: str) -> str:
    """Name the pair of characters that a boundary inside a token falls between."""
    if (before.isalpha() and after.isdigit()) or (before.isdigit() and after.isalpha()):
        return "letter-digit transition"
    if before.islower() and after.isupper():
        return "lowercase-uppercase transition"
    if before.isalpha() and after.isalpha():
        return "between two letters"
    return "other characters"


def show_context(doc: Doc, start: int, end: int, width: int = 3) -> str:
    """Return the tokens around a mention, with the tokens it touches in [[ ]]."""
    span = doc.char_span(start, end, alignment_mode="expand")
    if span is None:
        return "(no tokens)"
    before = [token.text for token in doc[max(0, span.start - width) : span.start]]
    inside = [token.text for token in span]
    after = [token.text for token in doc[span.end : span.end + width]]
    return " ".join(before + ["[[" + " ".join(inside) + "]]"] + after)


def count_aligned(tokenizer_nlp: Language, documents: List[PubtatorDocument]) -> int:
    aligned = 0
    for document in documents:
        doc = tokenizer_nlp.make_doc(document.text)
        for start, end in document.mentions:
            if doc.char_span(start, end) is not None:
                aligned += 1
    return aligned


@dataclass
class Misalignment:
    document: PubtatorDocument
    start: int
    end: int
    cuts: List[BoundaryCut]
    context: str


def list_misaligned(
    tokenizer_nlp: Language, documents: List[PubtatorDocument]
) -> Iterator[Misalignment]:
    """Yield each mention whose start or end is not a token boundary, with the cause."""
    for document in documents:
        doc = tokenizer_nlp.make_doc(document.text)
        for start, end in document.mentions:
            if doc.char_span(start, end) is not None:
                continue
            cuts = [
                cut
                for cut in (
                    describe_boundary(doc, start, is_end=False),
                    describe_boundary(doc, end, is_end=True),
                )
                if cut is not None
            ]
            yield Misalignment(document, start, end, cuts, show_context(doc, start, end))


def count_iob_tokens_reproduced(tokenizer_nlp: Language, iob_path: Path) -> Tuple[int, int, int, int]:
    """Return (IOB tokens, reproduced, sentences, sentences reproduced in full)."""
    n_tokens = n_reproduced = n_sentences = n_sentences_reproduced = 0
    for sentence in read_iob(iob_path, entity_type="Entity"):
        gold = []
        offset = 0
        for word in sentence.words:
            gold.append((offset, offset + len(word)))
            offset += len(word) + 1
        doc = tokenizer_nlp.make_doc(" ".join(sentence.words))
        ours = {(token.idx, token.idx + len(token.text)) for token in doc}
        reproduced = sum(1 for offsets in gold if offsets in ours)
        n_tokens += len(gold)
        n_reproduced += reproduced
        n_sentences += 1
        n_sentences_reproduced += reproduced == len(gold) == len(doc)
    return n_tokens, n_reproduced, n_sentences, n_sentences_reproduced


def compare_token_multisets(
    tokenizer_nlp: Language, documents: List[PubtatorDocument], iob_path: Path
) -> Tuple[int, int, int, Counter, Counter]:
    """Return (our tokens, IOB tokens, shared, ours only, IOB only) over a whole split."""
    seen = set()
    ours: Counter = Counter()
    for document in documents:
        if document.pmid in seen:
            continue
        seen.add(document.pmid)
        ours.update(token.text for token in tokenizer_nlp.make_doc(document.text) if not token.is_space)
    gold: Counter = Counter(
        word for sentence in read_iob(iob_path, entity_type="Entity") for word in sentence.words
    )
    shared = sum((ours & gold).values())
    return sum(ours.values()), sum(gold.values()), shared, ours - gold, gold - ours


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f} %" if whole else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data"),
        help="folder with ncbi_disease/ and bc5cdr/ (default: ../shared/data)",
    )
    args = parser.parse_args()

    default_nlp = spacy.blank("en")
    bio_nlp = spacy.blank(
        "en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}
    )
    documents = {
        (corpus, split): list(read_documents(args.data / pubtator))
        for corpus, split, pubtator, _ in SPLITS
    }

    print("Gold mentions on token boundaries (doc.char_span(start, end) is not None)\n")
    print(f"{'corpus':<13} {'split':<6} {'mentions':>8}   {'default English':>19}   {'BioTokenizer':>19}")
    for corpus, split, _, _ in SPLITS:
        split_documents = documents[corpus, split]
        n_mentions = sum(len(document.mentions) for document in split_documents)
        default_aligned = count_aligned(default_nlp, split_documents)
        bio_aligned = count_aligned(bio_nlp, split_documents)
        print(
            f"{corpus:<13} {split:<6} {n_mentions:>8}   "
            f"{default_aligned:>7} ({percent(default_aligned, n_mentions):>9})   "
            f"{bio_aligned:>7} ({percent(bio_aligned, n_mentions):>9})"
        )

    print("\nMentions that do not align with BioTokenizer\n")
    cut_kinds: Counter = Counter()
    for corpus, split, _, _ in SPLITS:
        for misalignment in list_misaligned(bio_nlp, documents[corpus, split]):
            document, start, end = misalignment.document, misalignment.start, misalignment.end
            print(f"{corpus} {split} PMID {document.pmid} {start}-{end} {document.text[start:end]!r}")
            print(f"    {'; '.join(cut.description for cut in misalignment.cuts)}")
            print(f"    tokens: {misalignment.context}")
            cut_kinds.update(cut.kind for cut in misalignment.cuts)
    if cut_kinds:
        print("\nBoundaries inside a token, by kind: " + ", ".join(
            f"{kind} {count}" for kind, count in cut_kinds.most_common()
        ))
    else:
        print("(none)")

    print("\nBioBERT IOB tokens reproduced by BioTokenizer on the IOB sentences joined by spaces\n")
    print(f"{'corpus':<13} {'split':<6} {'tokens':>8} {'reproduced':>19} {'sentences':>9} {'identical':>19}")
    for corpus, split, _, iob in SPLITS:
        n_tokens, n_reproduced, n_sentences, n_identical = count_iob_tokens_reproduced(
            bio_nlp, args.data / iob
        )
        print(
            f"{corpus:<13} {split:<6} {n_tokens:>8} "
            f"{n_reproduced:>7} ({percent(n_reproduced, n_tokens):>9}) {n_sentences:>9} "
            f"{n_identical:>7} ({percent(n_identical, n_sentences):>9})"
        )

    print("\nBioTokenizer's tokens of the PubTator text vs the IOB file's tokens (multisets)\n")
    print(f"{'corpus':<13} {'split':<6} {'ours':>8} {'IOB':>8} {'shared':>8}   differences")
    for corpus, split, _, iob in SPLITS:
        n_ours, n_gold, n_shared, ours_only, gold_only = compare_token_multisets(
            bio_nlp, documents[corpus, split], args.data / iob
        )
        differences = (
            f"ours only {ours_only.most_common(5)}, IOB only {gold_only.most_common(5)}"
            if ours_only or gold_only
            else "none"
        )
        print(f"{corpus:<13} {split:<6} {n_ours:>8} {n_gold:>8} {n_shared:>8}   {differences}")


if __name__ == "__main__":
    main()
