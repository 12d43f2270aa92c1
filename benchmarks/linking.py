"""Score biobert_linker on NCBI-disease and BC5CDR: gold mentions, end to end, and its cost in a pipeline.

For each dataset the dictionaries are built from the training and development
PubTator files:

- NCBI-disease: all four mention classes (SpecificDisease, DiseaseClass,
  Modifier, CompositeMention) are diseases, one dictionary;
- BC5CDR: diseases and chemicals, one dictionary each, scored apart.

The table printed at the end has one column per dataset and dictionary
(``ncbi_disease Disease``, ``bc5cdr Chemical``, ``bc5cdr Disease``) and three
sections of rows.  A cell reads ``n/a`` where its section did not run for
that column.

Gold mentions (always run).  Every gold mention of the test file with a
concept ID is linked from its text and entity type, and no entity recognizer
runs.  acc@1 is the share of these mentions whose predicted concept ID is
correct.  A prediction is correct when its parts equal the gold ID's parts as
sets, after splitting both at ``|`` and ``+`` and removing a ``MESH:``
prefix, so ``D010051|D001943`` matches ``D001943|D010051`` but ``D001943``
alone does not.  A mention that no step links counts as wrong.  Mentions
without a gold ID (BC5CDR's ``-1``, empty fields) are left out.

- Rows add one step at a time: exact names, then each normalization step,
  the abbreviation step (only when ``spacy_biobert.pipeline.abbreviations``
  exists, since it needs short forms and long forms in ``doc.spans``), the
  word-order key and the character 3-gram fallback.
- ``reach (gold ID known)`` is the share of test mentions whose gold ID the
  dictionary contains at all, an upper bound for every acc@1 row.
- ``test mentions`` counts the mentions with a gold ID.

The lines after the table give, per dataset, the dictionary size, the build
time and the tracemalloc peak while the dictionaries and all lookup tables
are built.  Throughput there is ``link()`` calls per second on the test
mentions, and ``__call__`` over Docs whose ``doc.ents`` are the gold
mentions, one process, one thread.

End to end (NCBI-disease with ``--pipeline``, BC5CDR with
``--bc5cdr-pipeline``, each skipped with a note when not given).  The test
documents (title + " " + abstract) go through the trained NER pipeline,
followed by ``biobert_abbreviations`` and ``biobert_linker`` with its default
settings and the dictionaries above.  The gold entities are the test file's
mentions.  A predicted entity belongs to a column through its label, mapped
as ``DEFAULT_LABELS`` of the linker maps it (``Disease`` to the Disease
dictionary).  Labels that the linker does not map are counted in a note.

- ``pairs P``, ``pairs R``, ``pairs F1``: precision, recall and F1 of
  (character span, concept ID) pairs.  A pair is correct when its start and
  end characters equal a gold mention's and its ID is correct by the acc@1
  rule.  A wrong ID is one false positive and one false negative.  An entity
  that the linker leaves without an ID adds no pair, so it lowers recall only.
  Gold mentions without an ID are not in the gold, and a predicted entity at
  such a span is ignored in every row of this section.
- ``entities P``, ``entities R``, ``entities F1``: the same on spans alone,
  without IDs, so the gap between these rows and the pair rows is what
  linking loses.
- ``link acc@1 on found spans``: of the predicted entities whose span equals
  a gold span, the share whose ID is correct (an entity without an ID counts
  as wrong).  Pair recall is entity recall times this share.
- ``gold mentions with an ID``, ``predicted entities`` (ignored ones left
  out) and ``predicted, not linked``: the counts behind the scores.

Pipeline cost (with ``--pipeline``, unless ``--no-cost``), in the
``ncbi_disease Disease`` column, on the 100 NCBI-disease test abstracts.
Three variants are measured: the NER pipeline alone, with
``biobert_abbreviations`` added, and with ``biobert_linker`` added after
that.  Each variant runs in a fresh child process, so that every peak RSS
is its own.  The child loads the pipeline, builds the linker, then tags all
abstracts twice with ``nlp.pipe`` at the pipeline's batch size.  The faster
pass counts.

- ``docs/s``: documents per second of the faster pass.
- ``peak RSS``: the child's peak resident memory in MiB, which includes the
  loaded model, the linker and the tagged Docs.  On Linux it is ``VmHWM``
  from ``/proc/self/status``, because ``ru_maxrss`` survives exec and can
  return the peak of the process that started the child.  Elsewhere it is
  ``ru_maxrss``.
- ``linker share of time``: the linker's own time over the 100 tagged Docs
  (faster of two runs) divided by the full pipeline's faster pass.  The
  target is under 30 %.  ``abbreviations share of time`` is the same for
  ``biobert_abbreviations``.
- ``linker build``: seconds to read the PubTator files and build every
  lookup table, the character n-gram index included.  This happens once per
  process and is not part of docs/s.
- ``linker memory, RSS growth``: how much the resident memory grows while
  the linker is built (Linux only, from ``/proc/self/statm``).
- ``linker memory, peak RSS diff``: the full variant's peak RSS minus that
  of NER + abbreviations.  The NER model's peak dominates both, so this
  difference is noisy.
- ``linker memory, traced``: the tracemalloc peak of the gold-mention run,
  which builds the same NCBI-disease dictionary and lookup tables.  The
  memory target, under 1 GB, applies to the largest of the three.

Run from the repository root::

    python benchmarks/linking.py --data ../shared/data --errors 20
    python benchmarks/linking.py --pipeline training/ncbi_minilm/model-best
    python benchmarks/linking.py --pipeline training/ncbi_minilm/model-best \\
        --bc5cdr-pipeline training/bc5cdr_minilm/model-best --json linking.json

``--data`` defaults to ``$SPACY_BIOBERT_DATA``, else ``../shared/data``
beside the repository root.  ``make demo`` writes the NCBI-disease pipeline
to ``training/ncbi_minilm/model-best``, and ``benchmarks/README.md`` gives the
command that trains a BC5CDR one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

import spacy  # noqa: E402
from spacy.language import Language  # noqa: E402

from spacy_biobert.linking.dictionary import (  # noqa: E402
    MISSING_CONCEPT_IDS,
    ConceptDictionary,
)
from spacy_biobert.linking.normalize import STEPS  # noqa: E402
from spacy_biobert.pipeline.linker import DEFAULT_LABELS, EntityLinker  # noqa: E402
from spacy_biobert.readers.mentions import AnnotatedDocument, to_doc  # noqa: E402
from spacy_biobert.readers.pubtator import read_pubtator  # noqa: E402
from spacy_biobert.tokenizer import build_bio_tokenizer  # noqa: E402

from benchmarks.linking_pipeline import (  # noqa: E402
    PipelineError,
    check_pipeline_folder,
    concept_set,
    is_correct,
    measure_costs,
    run_end_to_end,
)

ABBREVIATIONS_MODULE = "spacy_biobert.pipeline.abbreviations"
ABBREVIATIONS_FACTORY = "biobert_abbreviations"
DATASETS = {
    "ncbi_disease": {
        "dictionary": [
            "ncbi_disease/pubtator/NCBItrainset_corpus.txt",
            "ncbi_disease/pubtator/NCBIdevelopset_corpus.txt",
        ],
        "test": "ncbi_disease/pubtator/NCBItestset_corpus.txt",
    },
    "bc5cdr": {
        "dictionary": [
            "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt",
            "bc5cdr/pubtator/CDR_DevelopmentSet.PubTator.txt",
        ],
        "test": "bc5cdr/pubtator/CDR_TestSet.PubTator.txt",
    },
}


@dataclass
class TestMention:
    text: str
    label: str
    group: str  # the dictionary: Disease or Chemical
    gold: str
    document: int  # index into the test documents
    start: int
    end: int


@dataclass
class Row:
    name: str
    settings: Dict[str, Any]
    abbreviations: bool = False


def build_rows(abbreviations_available: bool) -> List[Row]:
    """List the ablation rows, each adding one step to the row before it."""
    off = {"normalization": [], "word_order": False, "fallback": "none", "use_abbreviations": False}
    rows = [Row("exact", dict(off))]
    steps: List[str] = []
    for step in STEPS:
        steps = steps + [step]
        rows.append(Row(f"+ {step}", {**off, "normalization": list(steps)}))
    settings = {**off, "normalization": list(STEPS)}
    if abbreviations_available:
        settings = {**settings, "use_abbreviations": True}
        rows.append(Row("+ abbreviations", dict(settings), abbreviations=True))
    settings = {**settings, "word_order": True}
    rows.append(Row("+ word order", dict(settings), abbreviations=abbreviations_available))
    settings = {**settings, "fallback": "char_ngram"}
    rows.append(Row("+ char 3-gram fallback", dict(settings), abbreviations=abbreviations_available))
    return rows


def read_test_mentions(documents: Sequence[AnnotatedDocument]) -> Tuple[List[TestMention], int]:
    """Return the test mentions with a gold ID, and how many were left out for lack of one."""
    mentions = []
    n_missing = 0
    for index, document in enumerate(documents):
        for mention in document.mentions:
            group = DEFAULT_LABELS.get(mention.label)
            if group is None:
                continue
            gold = mention.concept_id.strip()
            if gold in MISSING_CONCEPT_IDS:
                n_missing += 1
                continue
            mentions.append(
                TestMention(mention.text, mention.label, group, gold, index, mention.start, mention.end)
            )
    return mentions, n_missing


def build_dictionaries(paths: Sequence[Path]) -> Tuple[Dict[str, ConceptDictionary], EntityLinker, float, int]:
    """Build the dictionaries and every lookup table; return them, the seconds taken and the peak traced bytes."""
    nlp = spacy.blank("en")
    tracemalloc.start()
    started = time.perf_counter()
    linker = EntityLinker(nlp.vocab, fallback="char_ngram")
    linker.add_pubtator(paths)
    for group in linker.dictionaries:
        lookups = linker._lookups_for(group)
        # Build the n-gram index now, so that its memory and time are counted.
        lookups.nearest("a")
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return linker.dictionaries, linker, seconds, peak


def find_long_forms(
    documents: Sequence[AnnotatedDocument], mentions: Sequence[TestMention]
) -> Optional[List[Optional[str]]]:
    """Run the abbreviation component on the test documents; return each mention's long form, or None."""
    if importlib.util.find_spec(ABBREVIATIONS_MODULE) is None:
        return None
    importlib.import_module(ABBREVIATIONS_MODULE)
    if not Language.has_factory(ABBREVIATIONS_FACTORY):
        print(f"{ABBREVIATIONS_MODULE} registers no {ABBREVIATIONS_FACTORY!r} factory; the abbreviation row is left out.")
        return None
    nlp = spacy.blank("en")
    # The project's tokenizer splits "cancer(CRC", which spaCy's English one keeps whole.
    nlp.tokenizer = build_bio_tokenizer(nlp.vocab)
    nlp.add_pipe(ABBREVIATIONS_FACTORY)
    reader = EntityLinker(nlp.vocab)
    per_document = [reader.long_forms(doc) for doc in nlp.pipe(document.text for document in documents)]
    return [
        per_document[mention.document].get((mention.start, mention.end))
        or per_document[mention.document].get(mention.text)
        for mention in mentions
    ]


def link_all(
    linker: EntityLinker, mentions: Sequence[TestMention], long_forms: Optional[List[Optional[str]]]
) -> Tuple[List[Optional[str]], List[Optional[str]], float]:
    """Link every mention; return the predicted IDs, the methods and the seconds taken."""
    predicted, methods = [], []
    started = time.perf_counter()
    for index, mention in enumerate(mentions):
        long_form = long_forms[index] if long_forms is not None else None
        link = linker.link(mention.text, mention.label, long_form)
        predicted.append(None if link is None else link.concept_id)
        methods.append(None if link is None else link.method)
    return predicted, methods, time.perf_counter() - started


def accuracy(mentions: Sequence[TestMention], predicted: Sequence[Optional[str]], group: str) -> Tuple[float, int]:
    pairs = [(mention, concept) for mention, concept in zip(mentions, predicted) if mention.group == group]
    correct = sum(is_correct(concept, mention.gold) for mention, concept in pairs)
    return (correct / len(pairs) if pairs else float("nan")), len(pairs)


def reach(dictionaries: Dict[str, ConceptDictionary], mentions: Sequence[TestMention], group: str) -> float:
    known = {concept_set(dictionaries[group].concept_id(index)) for index in range(dictionaries[group].n_concepts)}
    selected = [mention for mention in mentions if mention.group == group]
    return sum(concept_set(mention.gold) in known for mention in selected) / max(len(selected), 1)


def component_throughput(linker: EntityLinker, documents: Sequence[AnnotatedDocument]) -> Tuple[float, int]:
    """Time ``linker(doc)`` over Docs whose ents are the gold mentions; return entities per second and the count."""
    nlp = spacy.blank("en")
    docs = [to_doc(nlp, document) for document in documents]
    n_entities = sum(len(doc.ents) for doc in docs)
    started = time.perf_counter()
    for doc in docs:
        linker(doc)
    return n_entities / (time.perf_counter() - started), n_entities


def print_errors(
    linker: EntityLinker,
    mentions: Sequence[TestMention],
    predicted: Sequence[Optional[str]],
    methods: Sequence[Optional[str]],
    limit: int,
) -> None:
    wrong = [
        (mention, concept, method)
        for mention, concept, method in zip(mentions, predicted, methods)
        if not is_correct(concept, mention.gold)
    ]
    print(f"\n{len(wrong)} wrong of {len(mentions)}; by step: {dict(Counter(method for _, _, method in wrong))}")
    for mention, concept, method in wrong[:: max(len(wrong) // limit, 1)][:limit]:
        dictionary = linker.dictionaries[mention.group]
        gold_names = [name for name in dictionary.names if any(c.concept_id == mention.gold for c in dictionary.candidates(name))]
        print(
            f"  {mention.text!r:45} {mention.label:16} gold {mention.gold:18} "
            f"predicted {concept or '-':18} by {method or '-':12} gold names: {gold_names[:3]}"
        )


def run_dataset(name: str, data: Path, errors: int) -> Dict[str, Any]:
    spec = DATASETS[name]
    dictionary_paths = [data / path for path in spec["dictionary"]]
    documents = list(read_pubtator(data / spec["test"]))
    mentions, n_missing = read_test_mentions(documents)
    groups = sorted({mention.group for mention in mentions})

    dictionaries, full_linker, build_seconds, peak_bytes = build_dictionaries(dictionary_paths)
    long_forms = find_long_forms(documents, mentions)
    result: Dict[str, Any] = {
        "dataset": name,
        "n_mentions": {group: sum(m.group == group for m in mentions) for group in groups},
        "n_without_id": n_missing,
        "n_names": {group: len(dictionaries[group]) for group in groups},
        "n_concepts": {group: dictionaries[group].n_concepts for group in groups},
        "reach": {group: reach(dictionaries, mentions, group) for group in groups},
        "build_seconds": build_seconds,
        "traced_peak_bytes": peak_bytes,
        "estimated_bytes": full_linker.memory_bytes(),
        "rows": [],
    }
    nlp = spacy.blank("en")
    for row in build_rows(long_forms is not None):
        linker = EntityLinker(nlp.vocab, **row.settings)
        linker.dictionaries = dictionaries
        predicted, methods, seconds = link_all(linker, mentions, long_forms if row.abbreviations else None)
        scores = {group: accuracy(mentions, predicted, group)[0] for group in groups}
        result["rows"].append(
            {"row": row.name, "acc@1": scores, "mentions_per_second": len(mentions) / seconds}
        )
    result["methods"] = dict(Counter(methods))
    linked = [is_correct(concept, m.gold) for concept, m in zip(predicted, mentions) if concept is not None]
    result["link_precision"] = sum(linked) / max(len(linked), 1)
    result["entities_per_second"], _ = component_throughput(linker, documents)
    if errors:
        print(f"\n{name}: wrong predictions of the last row")
        print_errors(linker, mentions, predicted, methods, errors)
    return result


LABEL_WIDTH = 44
CELL_WIDTH = 22
MIB = 2**20
MAX_LINKER_SHARE = 0.30
MAX_LINKER_BYTES = 2**30
# (row label, key in the scores of run_end_to_end, format)
END_TO_END_ROWS = [
    ("pairs P", "pair_precision", ".4f"),
    ("pairs R", "pair_recall", ".4f"),
    ("pairs F1", "pair_f1", ".4f"),
    ("entities P (no IDs)", "span_precision", ".4f"),
    ("entities R (no IDs)", "span_recall", ".4f"),
    ("entities F1 (no IDs)", "span_f1", ".4f"),
    ("link acc@1 on found spans", "link_accuracy_on_found", ".4f"),
    ("gold mentions with an ID", "gold_mentions", "d"),
    ("predicted entities", "predicted_entities", "d"),
    ("predicted, not linked", "unlinked", "d"),
]
COST_COLUMN = ("ncbi_disease", "Disease")


def format_cell(value: Any, spec: str = "") -> str:
    return f"{'n/a':>{CELL_WIDTH}}" if value is None else f"{format(value, spec):>{CELL_WIDTH}}"


def print_row(label: str, cells: Sequence[str]) -> None:
    print(f"{label:{LABEL_WIDTH}}" + "".join(cells))


def end_to_end_value(result: Dict[str, Any], group: str, key: str) -> Optional[float]:
    end_to_end = result.get("end_to_end")
    if end_to_end is None:
        return None
    scores = end_to_end["groups"].get(group)
    if scores is None:
        return None
    if key == "gold_mentions":
        return scores["span_true_positives"] + scores["span_false_negatives"]
    if key == "predicted_entities":
        return scores["span_true_positives"] + scores["span_false_positives"]
    return scores[key]


def cost_rows(cost: Dict[str, Any], traced_bytes: Optional[int]) -> List[Tuple[str, str]]:
    """Return (row label, formatted cell) for every cost row, as the module docstring defines them."""
    variants = cost["variants"]
    full = variants["ner+abbreviations+linker"]
    rss_growth = full.get("linker_rss_growth_bytes")
    rows = [
        ("docs/s, NER", format_cell(variants["ner"]["documents_per_second"], ".2f")),
        ("docs/s, NER + abbreviations", format_cell(variants["ner+abbreviations"]["documents_per_second"], ".2f")),
        ("docs/s, NER + abbreviations + linker", format_cell(full["documents_per_second"], ".2f")),
        ("peak RSS MiB, NER", format_cell(variants["ner"]["peak_rss_bytes"] / MIB, ".0f")),
        ("peak RSS MiB, NER + abbreviations", format_cell(variants["ner+abbreviations"]["peak_rss_bytes"] / MIB, ".0f")),
        ("peak RSS MiB, NER + abbreviations + linker", format_cell(full["peak_rss_bytes"] / MIB, ".0f")),
        ("linker share of time (target < 30 %)", format_cell(cost["linker_share"], ".1%")),
        ("abbreviations share of time", format_cell(cost["abbreviations_share"], ".1%")),
        ("linker build, s (once per process)", format_cell(full["linker_build_seconds"], ".2f")),
        ("linker memory MiB, RSS growth", format_cell(None if rss_growth is None else rss_growth / MIB, ".0f")),
        ("linker memory MiB, peak RSS diff", format_cell(cost["linker_peak_rss_difference_bytes"] / MIB, ".0f")),
        ("linker memory MiB, traced", format_cell(None if traced_bytes is None else traced_bytes / MIB, ".0f")),
    ]
    return rows


def linker_memory_bytes(cost: Dict[str, Any], traced_bytes: Optional[int]) -> int:
    """Return the largest of the three linker memory figures, the one the 1 GB target applies to."""
    figures = [
        cost["variants"]["ner+abbreviations+linker"].get("linker_rss_growth_bytes"),
        cost["linker_peak_rss_difference_bytes"],
        traced_bytes,
    ]
    return max(figure for figure in figures if figure is not None)


def print_table(results: Sequence[Dict[str, Any]]) -> None:
    columns = [(result["dataset"], group) for result in results for group in sorted(result["n_mentions"])]
    by_dataset = {result["dataset"]: result for result in results}
    header = f"{'row':{LABEL_WIDTH}}" + "".join(f"{dataset + ' ' + group:>{CELL_WIDTH}}" for dataset, group in columns)
    print()
    print(header)
    print("-" * len(header))

    print("acc@1 on the gold test mentions with a concept ID")
    row_names = list(dict.fromkeys(row["row"] for result in results for row in result["rows"]))
    for row_name in row_names:
        cells = []
        for dataset, group in columns:
            row = next((row for row in by_dataset[dataset]["rows"] if row["row"] == row_name), None)
            cells.append(format_cell(row["acc@1"][group] if row else None, ".4f"))
        print_row(row_name, cells)
    print_row("reach (gold ID known)", [format_cell(by_dataset[d]["reach"][g], ".4f") for d, g in columns])
    print_row("test mentions", [format_cell(by_dataset[d]["n_mentions"][g], "d") for d, g in columns])

    print("end to end on the entities of the NER pipeline")
    for label, key, spec in END_TO_END_ROWS:
        print_row(label, [format_cell(end_to_end_value(by_dataset[d], g, key), spec) for d, g in columns])

    print("cost in the NER pipeline, 100 NCBI-disease test abstracts")
    cost_result = by_dataset.get(COST_COLUMN[0], {})
    cost = cost_result.get("pipeline_cost")
    if cost is None:
        print("  not measured: pass --pipeline, and leave out --no-cost")
    else:
        for label, cell in cost_rows(cost, cost_result["traced_peak_bytes"]):
            print_row(label, [cell if column == COST_COLUMN else format_cell(None) for column in columns])

    for result in results:
        last = result["rows"][-1]
        print(
            f"\n{result['dataset']}: {sum(result['n_names'].values())} names, "
            f"{sum(result['n_concepts'].values())} concepts; built in {result['build_seconds']:.2f} s; "
            f"traced peak {result['traced_peak_bytes'] / 2**20:.1f} MiB, estimated size "
            f"{result['estimated_bytes'] / 2**20:.1f} MiB; link() {last['mentions_per_second']:.0f} mentions/s, "
            f"component {result['entities_per_second']:.0f} entities/s; "
            f"{result['link_precision']:.1%} of the last row's links are right; "
            f"{result['n_without_id']} test mentions without an ID left out; steps used: {result['methods']}"
        )
        print_end_to_end_notes(result)
    if cost is not None:
        print_targets(cost, cost_result["traced_peak_bytes"])


def print_end_to_end_notes(result: Dict[str, Any]) -> None:
    end_to_end = result.get("end_to_end")
    if end_to_end is None:
        return
    ignored = {group: scores["ignored"] for group, scores in end_to_end["groups"].items()}
    print(
        f"{result['dataset']} end to end: pipeline {end_to_end['pipeline']}, {end_to_end['n_documents']} documents "
        f"tagged in {end_to_end['seconds']:.1f} s; predicted entities at gold spans without an ID, ignored: {ignored}"
    )
    if end_to_end["unmapped_labels"]:
        print(
            f"  predicted entities with labels that the linker does not map, left out of the scores: "
            f"{end_to_end['unmapped_labels']}"
        )


def print_targets(cost: Dict[str, Any], traced_bytes: Optional[int]) -> None:
    share = cost["linker_share"]
    memory = linker_memory_bytes(cost, traced_bytes)
    print(
        f"\nlinker share of NER pipeline time: {share:.1%} "
        f"(target under {MAX_LINKER_SHARE:.0%}: {'met' if share < MAX_LINKER_SHARE else 'NOT met'})"
    )
    print(
        f"linker memory, largest of the three figures: {memory / MIB:.0f} MiB "
        f"(target under 1 GB: {'met' if memory < MAX_LINKER_BYTES else 'NOT met'})"
    )


def default_data_folder() -> Path:
    return Path(os.environ.get("SPACY_BIOBERT_DATA", REPOSITORY.parent / "shared" / "data"))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The module docstring of benchmarks/linking.py explains every row of the table.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_folder(),
        help="the folder with ncbi_disease/ and bc5cdr/ (default: $SPACY_BIOBERT_DATA, else ../shared/data)",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--errors", type=int, default=0, help="print this many wrong predictions per dataset")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--pipeline",
        type=Path,
        help="a trained NER pipeline folder for the NCBI-disease end-to-end and cost rows, "
        "such as training/ncbi_minilm/model-best",
    )
    parser.add_argument(
        "--bc5cdr-pipeline",
        type=Path,
        help="a trained NER pipeline folder with Chemical and Disease labels for the BC5CDR end-to-end rows",
    )
    parser.add_argument(
        "--no-cost",
        action="store_true",
        help="skip the pipeline cost rows, which tag the NCBI-disease test abstracts six times",
    )
    args = parser.parse_args(argv)
    # The readers log every corpus defect (misaligned mentions, duplicate IDs) as
    # a warning, which would bury the table; their tests cover those defects.
    logging.getLogger("spacy_biobert.readers").setLevel(logging.ERROR)

    missing = [
        args.data / path
        for dataset in args.datasets
        for path in DATASETS[dataset]["dictionary"] + [DATASETS[dataset]["test"]]
        if not (args.data / path).is_file()
    ]
    if missing:
        parser.error(
            f"corpus file(s) not found: {', '.join(map(str, missing))}. Pass --data or set SPACY_BIOBERT_DATA."
        )
    pipelines = {"ncbi_disease": args.pipeline, "bc5cdr": args.bc5cdr_pipeline}
    options = {"ncbi_disease": "--pipeline", "bc5cdr": "--bc5cdr-pipeline"}
    for dataset, pipeline in pipelines.items():
        if pipeline is None:
            continue
        if dataset not in args.datasets:
            parser.error(f"{options[dataset]} scores {dataset}: add {dataset} to --datasets or leave out {options[dataset]}.")
        try:
            check_pipeline_folder(pipeline)
        except PipelineError as error:
            parser.error(f"{options[dataset]}: {error}")

    # The cost children run before this process loads a model or builds a
    # dictionary.  Where VmHWM is missing (not Linux), a child's peak is
    # ru_maxrss, which can include the peak of this process.
    cost = None
    if args.pipeline is not None and not args.no_cost:
        ncbi = DATASETS["ncbi_disease"]
        cost = measure_costs(args.pipeline, [args.data / path for path in ncbi["dictionary"]], args.data / ncbi["test"])

    results = [run_dataset(dataset, args.data, args.errors) for dataset in args.datasets]
    for result in results:
        dataset = result["dataset"]
        result["end_to_end"] = None
        if pipelines[dataset] is None:
            print(
                f"\n{dataset}: end-to-end rows skipped. Pass {options[dataset]} PATH, a trained biobert_ner "
                f"pipeline, to score the entities it predicts."
            )
            continue
        spec = DATASETS[dataset]
        documents = list(read_pubtator(args.data / spec["test"]))
        result["end_to_end"] = run_end_to_end(
            pipelines[dataset], [args.data / path for path in spec["dictionary"]], documents
        )
        if dataset == COST_COLUMN[0]:
            result["pipeline_cost"] = cost
    if args.pipeline is None:
        print("Cost rows skipped: pass --pipeline PATH to time the NER pipeline with and without the linker.")

    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
