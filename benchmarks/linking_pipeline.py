"""End-to-end scores and pipeline cost of biobert_linker behind a trained NER pipeline.

Helpers of ``benchmarks/linking.py``, whose docstring defines every figure.
The module also runs as the child process that times one pipeline variant,
so that each variant's peak RSS is measured in a process of its own::

    python benchmarks/linking_pipeline.py --variant ner --pipeline PATH \\
        --test TEST.txt --dictionary TRAIN.txt DEV.txt

The child prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Set, Tuple

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

import spacy  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from spacy_biobert.linking.dictionary import MISSING_CONCEPT_IDS, split_concept_id  # noqa: E402
# Imported for the biobert_abbreviations and biobert_linker factories, so that
# they exist even where the package's entry points are out of date.
import spacy_biobert.pipeline.abbreviations  # noqa: E402,F401
from spacy_biobert.pipeline.linker import DEFAULT_LABELS, EntityLinker  # noqa: E402
from spacy_biobert.readers.mentions import AnnotatedDocument  # noqa: E402
from spacy_biobert.readers.pubtator import read_pubtator  # noqa: E402

ABBREVIATIONS_FACTORY = "biobert_abbreviations"
LINKER_FACTORY = "biobert_linker"
# Each variant adds one component to the one before it.
VARIANTS = ("ner", "ner+abbreviations", "ner+abbreviations+linker")
TIMED_PASSES = 2

# One entity to score: (document key, start character, end character, concept ID).
ScoredEntity = Tuple[Hashable, int, int, str]
SpanKey = Tuple[Hashable, int, int]


class PipelineError(ValueError):
    """A --pipeline folder that cannot be used for the end-to-end benchmark."""


def concept_set(concept_id: str) -> frozenset:
    """Return the parts of a concept ID as a set, without a ``MESH:`` prefix."""
    return frozenset(part[5:] if part.startswith("MESH:") else part for part in split_concept_id(concept_id))


def is_correct(predicted: Optional[str], gold: str) -> bool:
    """Tell whether a predicted ID equals the gold ID as sets of parts, the acc@1 rule of benchmarks/linking.py."""
    return predicted is not None and concept_set(predicted) == concept_set(gold)


def precision_recall_f1(true_positives: int, false_positives: int, false_negatives: int) -> Tuple[float, float, float]:
    """Return precision, recall and F1, each 0.0 where its denominator is 0."""
    predicted = true_positives + false_positives
    gold = true_positives + false_negatives
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class EndToEndScores:
    """Counts of one end-to-end comparison and the scores computed from them."""

    pair_true_positives: int = 0
    pair_false_positives: int = 0
    pair_false_negatives: int = 0
    span_true_positives: int = 0
    span_false_positives: int = 0
    span_false_negatives: int = 0
    # Predicted entities at a gold span with a correct concept ID.
    found_linked_correctly: int = 0
    # Predicted entities at a gold span that has no concept ID, left out of every count.
    ignored: int = 0
    # Predicted entities, not ignored, to which the linker gave no concept ID.
    unlinked: int = 0

    @property
    def pairs(self) -> Tuple[float, float, float]:
        """Precision, recall and F1 of (span, concept ID) pairs."""
        return precision_recall_f1(self.pair_true_positives, self.pair_false_positives, self.pair_false_negatives)

    @property
    def spans(self) -> Tuple[float, float, float]:
        """Precision, recall and F1 of spans alone."""
        return precision_recall_f1(self.span_true_positives, self.span_false_positives, self.span_false_negatives)

    @property
    def link_accuracy_on_found(self) -> float:
        """Share of correctly found spans whose predicted concept ID is correct, or 0.0 if no span was found."""
        return self.found_linked_correctly / self.span_true_positives if self.span_true_positives else 0.0

    def to_dict(self) -> Dict[str, Any]:
        counts = dict(vars(self))
        pair_precision, pair_recall, pair_f1 = self.pairs
        span_precision, span_recall, span_f1 = self.spans
        return {
            **counts,
            "pair_precision": pair_precision,
            "pair_recall": pair_recall,
            "pair_f1": pair_f1,
            "span_precision": span_precision,
            "span_recall": span_recall,
            "span_f1": span_f1,
            "link_accuracy_on_found": self.link_accuracy_on_found,
        }


def score_end_to_end(gold: Iterable[ScoredEntity], predicted: Iterable[ScoredEntity]) -> EndToEndScores:
    """Compare predicted (span, concept ID) pairs with the gold ones.

    A pair is correct when its span has the same document key and character
    offsets as a gold span and its concept ID equals that gold ID as sets of
    parts (:func:`is_correct`).  A wrong ID is therefore one false positive
    and one false negative.  Gold entities without an ID (``""``, ``-1``)
    leave the gold, and a predicted entity at such a span is ignored, unless
    another gold entity at the same span has an ID.  A predicted entity without
    an ID adds no pair, so it is a false positive only in the span scores.
    """
    gold_concepts: Dict[SpanKey, Set[frozenset]] = {}
    spans_without_id: Set[SpanKey] = set()
    for document, start, end, concept_id in gold:
        span = (document, start, end)
        if concept_id.strip() in MISSING_CONCEPT_IDS:
            spans_without_id.add(span)
        else:
            gold_concepts.setdefault(span, set()).add(concept_set(concept_id))
    ignored_spans = spans_without_id - gold_concepts.keys()

    scores = EndToEndScores()
    predicted_concepts: Dict[SpanKey, Set[frozenset]] = {}
    for document, start, end, concept_id in predicted:
        span = (document, start, end)
        if span in ignored_spans:
            scores.ignored += 1
            continue
        concepts = predicted_concepts.setdefault(span, set())
        if concept_id.strip() in MISSING_CONCEPT_IDS:
            scores.unlinked += 1
        else:
            concepts.add(concept_set(concept_id))

    gold_pairs = {(span, concepts) for span, concept_sets in gold_concepts.items() for concepts in concept_sets}
    predicted_pairs = {
        (span, concepts) for span, concept_sets in predicted_concepts.items() for concepts in concept_sets
    }
    scores.pair_true_positives = len(gold_pairs & predicted_pairs)
    scores.pair_false_positives = len(predicted_pairs - gold_pairs)
    scores.pair_false_negatives = len(gold_pairs - predicted_pairs)

    found = gold_concepts.keys() & predicted_concepts.keys()
    scores.span_true_positives = len(found)
    scores.span_false_positives = len(predicted_concepts.keys() - found)
    scores.span_false_negatives = len(gold_concepts.keys() - found)
    scores.found_linked_correctly = sum(bool(predicted_concepts[span] & gold_concepts[span]) for span in found)
    return scores


# Building and running the pipeline


def load_ner_pipeline(path: Path) -> Language:
    """Load a trained NER pipeline and check that it has no abbreviation or linker component yet."""
    check_pipeline_folder(path)
    nlp = spacy.load(path)
    factories = {name: nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}
    present = [f"{name} ({factory})" for name, factory in factories.items() if factory in (ABBREVIATIONS_FACTORY, LINKER_FACTORY)]
    if present:
        raise PipelineError(
            f"The pipeline {path} already contains {', '.join(present)}. The benchmark adds these "
            f"components itself: pass a pipeline that only recognizes entities, such as the "
            f"biobert_ner pipeline that 'make demo' writes to training/ncbi_minilm/model-best."
        )
    return nlp


def check_pipeline_folder(path: Path) -> None:
    """Raise PipelineError unless ``path`` is a folder with a spaCy ``config.cfg``."""
    if not path.is_dir():
        raise PipelineError(
            f"Pipeline folder not found: {path}. Train one with 'make demo', which writes "
            f"training/ncbi_minilm/model-best, or pass the folder of another trained pipeline."
        )
    if not (path / "config.cfg").is_file():
        raise PipelineError(
            f"{path} contains no config.cfg, so it is not a saved spaCy pipeline. Pass the "
            f"pipeline folder itself, such as training/ncbi_minilm/model-best, not its parent."
        )


def add_linking_components(nlp: Language, dictionary_paths: Sequence[Path], with_linker: bool = True) -> None:
    """Append biobert_abbreviations and, with ``with_linker``, biobert_linker with a dictionary from PubTator files."""
    nlp.add_pipe(ABBREVIATIONS_FACTORY)
    if with_linker:
        linker = nlp.add_pipe(LINKER_FACTORY, after=ABBREVIATIONS_FACTORY)
        linker.add_pubtator(list(dictionary_paths))


def build_lookups(linker: EntityLinker) -> None:
    """Build every lookup table of the linker now, as the first Docs would otherwise do."""
    for group in linker.dictionaries:
        # The character n-gram index is built on the first fallback lookup.
        linker._lookups_for(group).nearest("a")


def predicted_entities(docs: Sequence[Doc], group: str) -> List[ScoredEntity]:
    """Return the entities of ``docs`` whose label maps to ``group``, keyed by document index."""
    return [
        (index, ent.start_char, ent.end_char, ent.kb_id_)
        for index, doc in enumerate(docs)
        for ent in doc.ents
        if DEFAULT_LABELS.get(ent.label_) == group
    ]


def gold_entities(documents: Sequence[AnnotatedDocument], group: str) -> List[ScoredEntity]:
    """Return the gold mentions whose type maps to ``group``, keyed by document index."""
    return [
        (index, mention.start, mention.end, mention.concept_id)
        for index, document in enumerate(documents)
        for mention in document.mentions
        if DEFAULT_LABELS.get(mention.label) == group
    ]


def run_end_to_end(
    pipeline_path: Path, dictionary_paths: Sequence[Path], documents: Sequence[AnnotatedDocument]
) -> Dict[str, Any]:
    """Tag the documents with the NER pipeline plus abbreviations and linker, and score each entity group."""
    nlp = load_ner_pipeline(pipeline_path)
    add_linking_components(nlp, dictionary_paths)
    started = time.perf_counter()
    docs = list(nlp.pipe(document.text for document in documents))
    seconds = time.perf_counter() - started

    groups = sorted({DEFAULT_LABELS[m.label] for d in documents for m in d.mentions if m.label in DEFAULT_LABELS})
    unmapped = Counter(ent.label_ for doc in docs for ent in doc.ents if ent.label_ not in DEFAULT_LABELS)
    return {
        "pipeline": str(pipeline_path),
        "n_documents": len(docs),
        "seconds": seconds,
        "groups": {
            group: score_end_to_end(gold_entities(documents, group), predicted_entities(docs, group)).to_dict()
            for group in groups
        },
        "unmapped_labels": dict(unmapped),
    }


# Cost of each pipeline variant, one child process per variant


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size in bytes.

    Linux's ``VmHWM`` is preferred because ``ru_maxrss`` survives exec, so a
    child can report the peak of the process that started it.  Elsewhere
    ``ru_maxrss`` is used, which is KiB on Linux and bytes on macOS.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> Optional[int]:
    """Return this process's resident set size in bytes, or None where /proc is missing."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def best_seconds(run: Callable[[], object], passes: int = TIMED_PASSES) -> float:
    """Call ``run`` ``passes`` times and return the shortest wall time in seconds."""
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def measure_variant(
    variant: str, pipeline_path: Path, dictionary_paths: Sequence[Path], test_path: Path
) -> Dict[str, Any]:
    """Time one pipeline variant on the test documents and return its figures, in the child process."""
    texts = [document.text for document in read_pubtator(test_path)]
    nlp = load_ner_pipeline(pipeline_path)
    result: Dict[str, Any] = {"variant": variant, "n_documents": len(texts)}
    if variant != "ner":
        add_linking_components(nlp, dictionary_paths, with_linker=False)
    if variant == "ner+abbreviations+linker":
        rss_before = current_rss_bytes()
        started = time.perf_counter()
        linker = nlp.add_pipe(LINKER_FACTORY, after=ABBREVIATIONS_FACTORY)
        linker.add_pubtator(list(dictionary_paths))
        build_lookups(linker)
        result["linker_build_seconds"] = time.perf_counter() - started
        rss_after = current_rss_bytes()
        result["linker_rss_growth_bytes"] = None if rss_before is None else rss_after - rss_before
        result["linker_estimated_bytes"] = linker.memory_bytes()

    docs: List[Doc] = []

    def tag_all() -> None:
        docs[:] = nlp.pipe(texts)

    result["seconds"] = best_seconds(tag_all)
    result["documents_per_second"] = len(texts) / result["seconds"]
    result["entities"] = sum(len(doc.ents) for doc in docs)

    if variant == "ner+abbreviations+linker":
        # Both components run again on the tagged Docs.  Each replaces its own
        # output, so a repeated call does the same work as the first.
        abbreviations = nlp.get_pipe(ABBREVIATIONS_FACTORY)
        linker = nlp.get_pipe(LINKER_FACTORY)
        result["abbreviations_seconds"] = best_seconds(lambda: [abbreviations(doc) for doc in docs])
        result["linker_seconds"] = best_seconds(lambda: [linker(doc) for doc in docs])
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


def measure_costs(pipeline_path: Path, dictionary_paths: Sequence[Path], test_path: Path) -> Dict[str, Any]:
    """Measure every variant in a fresh child process and return the figures and the linker's share of time."""
    variants = {}
    for variant in VARIANTS:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--variant",
            variant,
            "--pipeline",
            str(pipeline_path.resolve()),
            "--test",
            str(test_path.resolve()),
            "--dictionary",
            *[str(path.resolve()) for path in dictionary_paths],
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"Measuring the {variant!r} pipeline variant failed with exit status "
                f"{completed.returncode}:\n{completed.stderr[-3000:]}"
            )
        variants[variant] = json.loads(completed.stdout.strip().splitlines()[-1])

    full = variants["ner+abbreviations+linker"]
    without_linker = variants["ner+abbreviations"]
    return {
        "pipeline": str(pipeline_path),
        "variants": variants,
        "linker_share": full["linker_seconds"] / full["seconds"],
        "abbreviations_share": full["abbreviations_seconds"] / full["seconds"],
        "linker_peak_rss_difference_bytes": full["peak_rss_bytes"] - without_linker["peak_rss_bytes"],
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Time one pipeline variant and print its figures as JSON.")
    parser.add_argument("--variant", required=True, choices=VARIANTS)
    parser.add_argument("--pipeline", required=True, type=Path, help="the trained NER pipeline folder")
    parser.add_argument("--test", required=True, type=Path, help="the PubTator file whose documents are tagged")
    parser.add_argument(
        "--dictionary", nargs="+", required=True, type=Path, help="the PubTator files of the linker's dictionary"
    )
    args = parser.parse_args(argv)
    # The readers log every corpus defect as a warning; the parent's output has no room for them.
    logging.getLogger("spacy_biobert.readers").setLevel(logging.ERROR)
    result = measure_variant(args.variant, args.pipeline, args.dictionary, args.test)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
