"""``python -m spacy_biobert tag``: run a trained pipeline over documents and write the entities.

Reads PubMed/MEDLINE XML (``.xml``, ``.xml.gz``), PubTator, BioC or brat,
tags each document's text (title + " " + abstract for PubMed and PubTator)
and writes PubTator or BioC JSON with the predicted entities.  Documents are
streamed, so a baseline file of 30,000 citations need not fit in memory.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import spacy
from tqdm import tqdm

from ..memory import use_mmap_for_large_allocations
from ..readers.bioc import write_bioc_json
from ..readers.common import check_not_input
from ..readers.corpus import read_documents
from ..readers.mentions import AnnotatedDocument, Mention
from ..readers.pubtator import write_pubtator

OUTPUT_FORMATS = ("pubtator", "bioc_json")


@dataclasses.dataclass
class TagStats:
    """Counts and timing of one tagging run."""

    documents: int = 0
    characters: int = 0
    entities: int = 0
    seconds: float = 0.0


def output_format_for(path: Path) -> str:
    """Return the output format a file name implies: ``.json``/``.jsonl`` is BioC JSON, else PubTator."""
    return "bioc_json" if path.suffix.lower() in (".json", ".jsonl") else "pubtator"


def tag(
    pipeline: Path,
    input_path: Path,
    output_path: Path,
    *,
    input_format: str = "auto",
    output_format: Optional[str] = None,
    batch_size: int = 32,
    progress: bool = True,
) -> TagStats:
    """Tag every document of ``input_path`` with the pipeline and write the entities to ``output_path``.

    The output file is written through a temporary file, so a failure leaves
    any earlier output in place.  Entities replace the input's own mentions
    and relations.
    """
    output_format = output_format or output_format_for(Path(output_path))
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"Invalid output format {output_format!r}; expected one of {', '.join(OUTPUT_FORMATS)}."
        )
    check_not_input(Path(output_path), Path(input_path))
    # A run over a baseline file is long enough for heap fragmentation to show.
    use_mmap_for_large_allocations()
    nlp = spacy.load(pipeline)
    stats = TagStats()
    start = time.perf_counter()

    def tagged() -> Iterator[AnnotatedDocument]:
        documents = read_documents(Path(input_path), input_format)
        pairs = ((document.text, document) for document in documents)
        bar = tqdm(unit=" docs", disable=not progress, file=sys.stderr)
        for doc, document in nlp.pipe(pairs, as_tuples=True, batch_size=batch_size):
            mentions = [
                Mention(ent.start_char, ent.end_char, ent.text, ent.label_, ent.kb_id_)
                for ent in doc.ents
            ]
            stats.documents += 1
            stats.characters += len(document.text)
            stats.entities += len(mentions)
            bar.update(1)
            yield dataclasses.replace(document, mentions=mentions, relations=[])
        bar.close()

    if output_format == "pubtator":
        write_pubtator(tagged(), output_path)
    else:
        write_bioc_json(tagged(), output_path)
    stats.seconds = time.perf_counter() - start
    return stats


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="Tag PubMed XML, PubTator, BioC or brat documents and write PubTator or BioC JSON.",
        description="Run a trained pipeline over the documents of a PubMed/MEDLINE XML "
        "(.xml, .xml.gz), PubTator, BioC or brat input and write the predicted entities "
        "as PubTator (.txt, .pubtator) or BioC JSON (.json, .jsonl).",
    )
    parser.add_argument("pipeline", type=Path, help="a trained pipeline folder or package name")
    parser.add_argument("input", type=Path, help="the documents to tag")
    parser.add_argument("output", type=Path, help="the output file")
    parser.add_argument(
        "--input-format",
        default="auto",
        choices=("auto", "pubmed", "pubtator", "bioc_xml", "bioc_json", "brat"),
        help="the input format (default: auto, from the file name and content)",
    )
    parser.add_argument(
        "--output-format",
        default=None,
        choices=OUTPUT_FORMATS,
        help="the output format (default: BioC JSON for .json/.jsonl, else PubTator)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="documents per nlp.pipe batch (default: 32)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def run(args) -> None:
        stats = tag(
            args.pipeline,
            args.input,
            args.output,
            input_format=args.input_format,
            output_format=args.output_format,
            batch_size=args.batch_size,
            progress=not args.no_progress,
        )
        rate = stats.documents / stats.seconds if stats.seconds else 0.0
        print(
            f"Tagged {stats.documents} documents ({stats.characters} characters, "
            f"{stats.entities} entities) in {stats.seconds:.1f} s, {rate:.1f} documents/s; "
            f"wrote {args.output}"
        )

    parser.set_defaults(run=run)
