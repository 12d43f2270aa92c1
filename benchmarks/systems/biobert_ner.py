"""This package's ``biobert_ner`` as a system of the accuracy benchmark.

Training runs ``spacy train`` in-process on ``configs/ner_cpu.cfg`` with the
benchmark's budget and optimizer settings given as overrides, so the table
measures the shipped config.  Component settings (``decoding``,
``label_smoothing``, ``max_grad_norm``, ``head_learn_rate_factor``, ``crf``, ``window``, ``context``, ``pack``) can be overridden per run to
compare options, and ``schedule=false`` trains at a constant learning rate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional

import spacy
from spacy.cli.train import train as spacy_train
from spacy.language import Language
from spacy.tokens import Doc

from spacy_biobert.tags import spans_to_tags

Sentence = tuple[list[str], list[str]]  # (words, IOB2 tags such as "B-Disease")

CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "ner_cpu.cfg"
DEV_SENTENCES = 50

# Option names accepted in a system spec such as biobert_ner:decoding=argmax,
# and the config key each sets.
OPTIONS = {
    "decoding": "components.ner.decoding",
    "label_smoothing": "components.ner.label_smoothing",
    "max_grad_norm": "components.ner.max_grad_norm",
    "head_learn_rate_factor": "components.ner.head_learn_rate_factor",
    "crf": "components.ner.crf",
    "window": "components.ner.model.window",
    "stride": "components.ner.model.stride",
    "context": "components.ner.model.context",
    "pack": "components.ner.model.pack",
}


class BiobertTagger:
    """A trained biobert_ner pipeline with the benchmark's tagging interface."""

    def __init__(self, nlp: Language, train_seconds: float):
        self.nlp = nlp
        self.train_seconds = train_seconds

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tag pre-tokenized sentences with one IOB2 tag per word, without re-tokenizing."""
        docs = (Doc(self.nlp.vocab, words=words) for words in sentences if words)
        for _name, component in self.nlp.pipeline:
            docs = component.pipe(docs, batch_size=64)
        tagged = iter([doc_to_iob(doc) for doc in docs])
        return [next(tagged) if words else [] for words in sentences]

    def set_inference(self, *, decoding: str, context: str) -> None:
        """Switch decoding and context on the trained pipeline, to score them without retraining."""
        ner = self.nlp.get_pipe("ner")
        ner.decoding = decoding
        ner.model.attrs["context"] = context

    def tag_texts(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """Tag raw texts as a user would, with ``nlp.pipe`` and the pipeline's tokenizer."""
        return [
            [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
            for doc in self.nlp.pipe(texts, batch_size=32)
        ]


def doc_to_iob(doc: Doc) -> list[str]:
    return spans_to_tags([(ent.start, ent.end, ent.label_) for ent in doc.ents], len(doc))


def write_iob(sentences: list[Sentence], path: Path) -> None:
    with path.open("w", encoding="utf-8") as file:
        for words, tags in sentences:
            for word, tag in zip(words, tags):
                file.write(f"{word}\t{tag}\n")
            file.write("\n")


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
    options: Optional[Dict[str, Any]] = None,
) -> BiobertTagger:
    """Train biobert_ner for ``steps`` updates of ``batch_size`` sentences and load the final weights.

    ``labels`` is not needed: the component collects the labels from the data.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_iob(train, workdir / "train.tsv")
    write_iob(train[:DEV_SENTENCES], workdir / "dev.tsv")
    overrides: Dict[str, Any] = {
        "paths.train": str(workdir / "train.tsv"),
        "paths.dev": str(workdir / "dev.tsv"),
        "paths.encoder": encoder,
        # The tags are typed (B-Disease), so no entity_type is needed.
        "corpora.train.entity_type": None,
        "corpora.dev.entity_type": None,
        "system.seed": seed,
        # spaCy counts steps from 0 and stops after step max_steps, so it makes
        # max_steps + 1 updates, the last one at learning rate 0.
        "training.max_steps": max(steps - 1, 1),
        "training.max_epochs": 0,
        "training.eval_frequency": steps + 1,
        "training.batcher.size": batch_size,
        "training.optimizer.L2": weight_decay,
        "training.optimizer.learn_rate.initial_rate": learning_rate,
        "training.optimizer.learn_rate.warmup_steps": round(warmup_ratio * steps),
        "training.optimizer.learn_rate.total_steps": steps,
    }
    options = dict(options or {})
    if not options.pop("schedule", True):
        # A constant learning rate: no warm-up, and a decay that never comes.
        overrides["training.optimizer.learn_rate.warmup_steps"] = 0
        overrides["training.optimizer.learn_rate.total_steps"] = 10**9
    for name, value in options.items():
        if name not in OPTIONS:
            raise ValueError(
                f"Unknown biobert_ner option {name!r}; expected schedule or one of "
                f"{', '.join(OPTIONS)}."
            )
        overrides[OPTIONS[name]] = value
    output = workdir / "output"
    started = time.perf_counter()
    spacy_train(CONFIG_PATH, output, overrides=overrides)
    train_seconds = time.perf_counter() - started
    return BiobertTagger(spacy.load(output / "model-last"), train_seconds)
